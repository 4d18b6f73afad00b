import * as ort from 'onnxruntime-node';
import { Rng } from '../util/rng';

/** Runs a model once on random inputs (symbolic dims set to 2) and describes its outputs. */
export async function smokeRun(file: string): Promise<string> {
  const session = await ort.InferenceSession.create(file);
  const rng = new Rng(0);
  const feeds: Record<string, ort.Tensor> = {};
  for (const name of session.inputNames) {
    const meta = session.inputMetadata.find((m) => m.name === name);
    if (meta === undefined || !meta.isTensor) throw new Error(`input '${name}' is not a tensor`);
    const dims = meta.shape.map((d) => (typeof d === 'number' ? d : 2));
    const size = dims.reduce((a, b) => a * b, 1);
    if (meta.type === 'float32') feeds[name] = new ort.Tensor('float32', Float32Array.from({ length: size }, () => rng.normal()), dims);
    else if (meta.type === 'int64') feeds[name] = new ort.Tensor('int64', BigInt64Array.from({ length: size }, () => 0n), dims);
    else throw new Error(`input '${name}' has type ${meta.type}, which --check cannot fill`);
  }
  const start = performance.now();
  const outputs = await session.run(feeds);
  const ms = performance.now() - start;
  const described = Object.entries(outputs).map(([name, t]) => {
    const finite = t.type !== 'float32' || (t.data as Float32Array).every((v) => Number.isFinite(v));
    return `${name} [${t.dims.join(', ')}]${finite ? '' : ' (contains NaN/Inf!)'}`;
  });
  await session.release();
  return `Check: onnxruntime-node ${ort.env.versions.node} ran it on random input in ${ms.toFixed(1)} ms -> ${described.join(', ')}`;
}
