import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';

/**
 * Runs a model once with ORT's profiler on and reports which execution provider ran each op type, so that CPU
 * fallbacks of a GPU provider are visible (ORT assigns an op to CPU when the provider has no kernel for it).
 */
export async function opPlacement(
  model: Uint8Array, feeds: Record<string, ort.Tensor>, executionProviders: string[],
): Promise<{ outputs: ort.InferenceSession.OnnxValueMapType; byProvider: Map<string, Set<string>> }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'deepvision-profile-'));
  try {
    const session = await ort.InferenceSession.create(model, {
      executionProviders, enableProfiling: true, profileFilePrefix: path.join(dir, 'profile'),
    });
    const outputs = await session.run(feeds);
    session.endProfiling();
    await session.release();
    const file = fs.readdirSync(dir).find((f) => f.startsWith('profile'));
    if (file === undefined) throw new Error('onnxruntime wrote no profile');
    const events = JSON.parse(fs.readFileSync(path.join(dir, file), 'utf8')) as { cat?: string; args?: { provider?: string; op_name?: string } }[];
    const byProvider = new Map<string, Set<string>>();
    for (const e of events) {
      if (e.cat !== 'Node' || !e.args?.provider || !e.args.op_name) continue;
      if (!byProvider.has(e.args.provider)) byProvider.set(e.args.provider, new Set());
      byProvider.get(e.args.provider)!.add(e.args.op_name);
    }
    return { outputs, byProvider };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
