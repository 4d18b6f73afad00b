/**
 * `deepvision inspect` and `deepvision export` on hostile input: malformed ONNX files (test/adversarial/onnx.ts),
 * broken checkpoint metadata and tensors, and a disk that fills up while the export is written. Every failure is
 * exit status 1 with one `error:` line, and export leaves the output folder as it was (or absent).
 */
import { execFile, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { exportModel, FileWriter } from '../src/export/export-model';
import { decodeSafetensors, encodeSafetensors, NamedTensor } from '../src/io/safetensors';
import { describeWriteFailure, writeFileAtomic, WriteError } from '../src/util/atomic-write';
import { UserError } from '../src/util/user-error';
import { malformedOnnxCases, MalformedCase, truncations, writeCase } from './adversarial/onnx';
import { BIN, EXPORT_GRAPH } from './support/exported-model';

const ROOT = path.resolve(__dirname, '..');
let tmp: string;
let runDir: string;

interface CliResult { status: number | null; stdout: string; stderr: string }

/** The built CLI in a child process (asynchronous, so several can run at once). */
function cli(cwd: string, ...args: string[]): Promise<CliResult> {
  return new Promise((resolve) => {
    // DEEPVISION_NO_TUNABLES: no re-launch with malloc tunables (a second Node start per run; they only speed up training).
    const env = { ...process.env, DEEPVISION_NO_TUNABLES: '1' };
    execFile(process.execPath, [BIN, ...args], { cwd, env, encoding: 'utf8', timeout: 60000 }, (err, stdout, stderr) => {
      const status = err === null ? 0 : typeof err.code === 'number' ? err.code : null;
      resolve({ status, stdout, stderr });
    });
  });
}

/** Runs tasks with at most `limit` at a time (the machine has few cores; one at a time is slow). */
async function pool<T, R>(items: T[], limit: number, task: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(Array.from({ length: limit }, async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await task(items[i]!);
    }
  }));
  return results;
}

/** Exit status 1 and exactly one line on stderr, `error: ...`, matching `pattern`; nothing that looks like a stack. */
function expectOneErrorLine(r: CliResult, pattern: RegExp): void {
  const lines = r.stderr.split('\n').filter((l) => l.trim() !== '');
  expect({ status: r.status, lines }).toEqual({ status: 1, lines: [expect.stringMatching(/^error: /)] });
  expect(lines[0]).toMatch(pattern);
  expect(r.stderr).not.toMatch(/\n\s+at |unexpectedly/);
}

function copyRun(to: string): string {
  fs.cpSync(runDir, to, { recursive: true });
  return to;
}

beforeAll(() => {
  if (!fs.existsSync(path.join(ROOT, 'dist', 'cli', 'main.js'))) throw new Error('the CLI is not built: run `npm run build` (npm test does it first)');
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'deepvision-export-hostile-'));
  fs.writeFileSync(path.join(tmp, 'small.ts'), EXPORT_GRAPH);
  // One short epoch: export checks consistency, not accuracy (about 2 s).
  runDir = path.join(tmp, 'run');
  const train = spawnSync(process.execPath, [BIN, 'train', 'small.ts', '--data', 'shapes', '--image-size', '16', '--train-size', '256',
    '--val-size', '64', '--epochs', '1', '--no-progress', '--out', runDir], { cwd: tmp, encoding: 'utf8', timeout: 120000 });
  if (train.status !== 0) throw new Error(`training failed:\n${train.stdout}\n${train.stderr}`);
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('malformed ONNX files', () => {
  const cases = malformedOnnxCases();

  test('the generator makes every kind the issue names', () => {
    const names = cases.map((c) => c.name);
    for (const kind of ['zero-bytes', 'random-', 'truncated-', 'node-cycle', 'unknown-op', 'dim-3e9', 'external-folder', 'external-missing', 'external-traversal']) {
      expect(names.some((n) => n.startsWith(kind))).toBe(true);
    }
  });

  test('inspect: one error line for each (exit 0 only for well-formed ONNX with an unknown op)', async () => {
    const made = cases.map((c) => ({ c, written: writeCase(c, path.join(tmp, 'inspect', c.name)) }));
    const results = await pool(made, 3, async ({ written }) => ('file' in written ? cli(tmp, 'inspect', written.file) : undefined));
    const table: string[] = [];
    made.forEach(({ c, written }, i) => {
      const r = results[i];
      if (r === undefined) {
        table.push(`${c.name}: skipped (${'skipped' in written ? written.skipped : ''})`);
        return;
      }
      table.push(`${c.name}: exit ${r.status} ${r.stderr.trim() || r.stdout.split('\n')[0]}`);
      if (c.reader === 'reads') {
        expect([c.name, r.status, r.stderr]).toEqual([c.name, 0, '']);
      } else {
        expectOneErrorLine(r, c.reader);
        expect(r.stderr).toContain(path.join(c.name, 'model.onnx'));
      }
    });
    console.log(table.join('\n'));
  });

  test('export: one error line when inference_model.onnx or eval_model.onnx is malformed; nothing written', async () => {
    const real = (name: string) => new Uint8Array(fs.readFileSync(path.join(runDir, name)));
    // Every case as the inference model; as the eval model (which export reads with the same reader before
    // onnxruntime loads it), those where onnxruntime or the eval-specific checks come into play, and a few more.
    const asEval = ['zero-bytes', 'node-cycle', 'unknown-op', 'dim-3e9', 'external-folder', 'external-traversal', 'external-fifo'];
    const runs: { c: MalformedCase; which: string }[] = [
      ...[...cases, ...truncations(real('inference_model.onnx'), 'inference_model.onnx')].map((c) => ({ c, which: 'inference_model.onnx' })),
      ...[...cases.filter((c) => asEval.includes(c.name)), ...truncations(real('eval_model.onnx'), 'eval_model.onnx')].map((c) => ({ c, which: 'eval_model.onnx' })),
    ];
    const results = await pool(runs, 3, async ({ c, which }) => {
      const dir = copyRun(path.join(tmp, 'export', `${which}-${c.name}`));
      const written = writeCase(c, dir, which);
      if ('skipped' in written) return { skipped: written.skipped };
      const out = path.join(dir, 'out', 'small');
      return { r: await cli(tmp, 'export', dir, '--out', out), out };
    });
    const table: string[] = [];
    runs.forEach(({ c, which }, i) => {
      const result = results[i]!;
      if ('skipped' in result) {
        table.push(`${which} ${c.name}: skipped (${result.skipped})`);
        return;
      }
      table.push(`${which} ${c.name}: exit ${result.r.status} ${result.r.stderr.trim()}`);
      expectOneErrorLine(result.r, c.reader === 'reads' ? /onnxruntime rejected .*(inference_model|eval_model)\.onnx/ : c.reader);
      expect(fs.existsSync(path.dirname(result.out))).toBe(false);
    });
    console.log(table.join('\n'));
  });
});

describe('files that are folders', () => {
  test('inspect a folder, and export a run whose model or checkpoint is a folder: one error line each', async () => {
    const which = ['inference_model.onnx', 'eval_model.onnx', 'checkpoint.safetensors'];
    const dirs = which.map((name) => {
      const dir = copyRun(path.join(tmp, 'folders', name));
      fs.rmSync(path.join(dir, name));
      fs.mkdirSync(path.join(dir, name));
      return dir;
    });
    const [inspected, ...exported] = await pool([['inspect', tmp], ...dirs.map((d) => ['export', d, '--out', path.join(d, 'out', 'small')])], 3, (args) => cli(tmp, ...args));
    expectOneErrorLine(inspected!, /cannot read file: EISDIR/);
    exported.forEach((r, i) => {
      expectOneErrorLine(r, new RegExp(which[i]!.replace('.', '\\.')));
      expect(fs.existsSync(path.join(dirs[i]!, 'out'))).toBe(false);
    });
  });
});

describe('checkpoint metadata and tensors', () => {
  const checkpointName = 'checkpoint.safetensors';

  /** A copy of the run whose checkpoint has metadata or tensors changed by `edit`. */
  function withCheckpoint(name: string, edit: (tensors: Map<string, NamedTensor>, metadata: Record<string, string>) => void): string {
    const dir = copyRun(path.join(tmp, 'checkpoint', name));
    const file = path.join(dir, checkpointName);
    const { tensors, metadata } = decodeSafetensors(fs.readFileSync(file));
    edit(tensors, metadata);
    fs.writeFileSync(file, encodeSafetensors(tensors, metadata));
    return dir;
  }

  const setMeta = (key: string, value: string | undefined) => (_: Map<string, NamedTensor>, m: Record<string, string>) => {
    if (value === undefined) delete m[key];
    else m[key] = value;
  };
  const N = 'deepvision.normalization';
  const C = 'deepvision.classes';
  const B = 'deepvision.best';
  const cases: [string, (t: Map<string, NamedTensor>, m: Record<string, string>) => void, RegExp][] = [
    ['normalization missing', setMeta(N, undefined), /does not record 'deepvision\.normalization'/],
    ['normalization not JSON', setMeta(N, '{mean: [0'), /'deepvision\.normalization' is not valid JSON/],
    ['normalization null', setMeta(N, 'null'), /'deepvision\.normalization' is not an object/],
    ['normalization strings', setMeta(N, '{"mean": ["a", "b", "c"], "std": [1, 1, 1]}'), /'deepvision\.normalization' needs "mean" and "std"/],
    ['normalization 2 channels', setMeta(N, '{"mean": [0, 0], "std": [1, 1]}'), /'deepvision\.normalization' has 2 means .* 3 input channels/],
    ['normalization zero std', setMeta(N, '{"mean": [0, 0, 0], "std": [1, 0, 1]}'), /'deepvision\.normalization' has a standard deviation that is not positive/],
    ['classes not a list', setMeta(C, '{"0": "circle"}'), /'deepvision\.classes' must be a non-empty list/],
    ['classes empty', setMeta(C, '[]'), /'deepvision\.classes' must be a non-empty list/],
    ['classes numbers', setMeta(C, JSON.stringify(Array.from({ length: 10 }, (_, i) => i))), /'deepvision\.classes' must be a non-empty list of class names/],
    ['classes too few', setMeta(C, '["a", "b", "c"]'), /'deepvision\.classes' names 3 classes, but the model has 10 outputs/],
    ['best not JSON', setMeta(B, 'epoch 3'), /'deepvision\.best' is not valid JSON/],
    ['best without numbers', setMeta(B, '{"epoch": "3"}'), /'deepvision\.best' must record epoch/],
    ['tensor missing', (t) => t.delete('head.weight'), /checkpoint\.safetensors has no tensor 'head\.weight' that .*eval_model\.onnx needs/],
    ['tensor of the wrong shape', (t) => t.set('head.bias', { dtype: 'float32', shape: [7], data: new Float32Array(7) }), /tensor 'head\.bias' is \[7\] .* expects \[10\]/],
    ['tensor transposed', (t) => {
      const w = t.get('head.weight')!;
      t.set('head.weight', { ...w, shape: [w.shape[1]!, w.shape[0]!] });
    }, /tensor 'head\.weight' is \[256,10\]/],
    ['NaN weights', (t) => {
      const w = t.get('head.bias')!;
      t.set('head.bias', { ...w, data: new Float32Array(w.shape[0]!).fill(NaN) });
    }, /checkpoint\.safetensors: tensor "head\.bias" holds NaN at index 0 \(10 values are not finite\): the checkpoint is unusable/],
  ];

  test('each malformed value: exit 1, one error line naming the file and the key; nothing written', async () => {
    const dirs = cases.map(([name, edit]) => withCheckpoint(name.replace(/ /g, '-'), edit));
    const results = await pool(dirs, 3, (dir) => cli(tmp, 'export', dir, '--out', path.join(dir, 'out', 'small')));
    cases.forEach(([name, , pattern], i) => {
      const r = results[i]!;
      expect([name, r.stderr.includes(checkpointName)]).toEqual([name, true]);
      expectOneErrorLine(r, pattern);
      expect(fs.existsSync(path.join(dirs[i]!, 'out'))).toBe(false);
    });
  });
});

describe('a disk that fills up while the export is written', () => {
  const enospc = (file: string) => Object.assign(new Error(`ENOSPC: no space left on device, write '${file}'`), { code: 'ENOSPC', errno: -28, syscall: 'write' });

  /** A writer that fails on the file named `failOn` (the nth time it is written), writing everything else. */
  function failingWriter(failOn: string): { write: FileWriter; written: string[] } {
    const written: string[] = [];
    return {
      written,
      write: (file, data) => {
        if (path.basename(file) === failOn) throw enospc(file);
        fs.writeFileSync(file, data);
        written.push(file);
      },
    };
  }

  const snapshot = (dir: string): Record<string, string> => {
    if (!fs.existsSync(dir)) return {};
    const out: Record<string, string> = {};
    for (const name of fs.readdirSync(dir, { recursive: true }) as string[]) {
      const p = path.join(dir, name);
      out[name] = fs.statSync(p).isDirectory() ? 'folder' : fs.readFileSync(p).toString('base64');
    }
    return out;
  };

  test.each(['model.onnx', 'model.json', 'index.json'])('ENOSPC writing %s into a new folder: one error line, no folder left behind', async (failOn) => {
    const base = path.join(tmp, 'full-new', failOn);
    fs.mkdirSync(base, { recursive: true });
    const out = path.join(base, 'deeper', 'models', 'small');
    const { write } = failingWriter(failOn);
    const err = await exportModel(runDir, out, { writeFile: write }).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(UserError);
    const shown = failOn === 'index.json' ? path.join(base, 'deeper', 'models', 'index.json') : path.join(out, failOn);
    expect((err as Error).message).toBe(`no space left on device writing ${shown}`);
    expect(fs.readdirSync(base)).toEqual([]);
  });

  test.each(['model.onnx', 'model.json', 'index.json'])('ENOSPC writing %s over an earlier export: the earlier files stay as they were', async (failOn) => {
    const modelsDir = path.join(tmp, 'full-again', failOn, 'models');
    const out = path.join(modelsDir, 'small');
    await exportModel(runDir, out);
    fs.writeFileSync(path.join(out, 'notes.txt'), 'mine');
    const before = snapshot(modelsDir);
    const { write } = failingWriter(failOn);
    await expect(exportModel(runDir, out, { writeFile: write, fp16: true })).rejects.toThrow(/^no space left on device writing /);
    expect(snapshot(modelsDir)).toEqual(before);
  });

  test('a WriteError from the writer names the output file, not the hidden staging folder', async () => {
    const out = path.join(tmp, 'named', 'models', 'small');
    const write: FileWriter = (file, data) => {
      if (path.basename(file) === 'model.json') throw new WriteError(describeWriteFailure(enospc(file), file));
      writeFileAtomic(file, data);
    };
    await expect(exportModel(runDir, out, { writeFile: write })).rejects.toThrow(`no space left on device writing ${path.join(out, 'model.json')}`);
    expect(fs.existsSync(path.join(tmp, 'named'))).toBe(false); // export created it, and removed it again
  });

  test('an output path through a file: one error line, nothing created', async () => {
    const base = path.join(tmp, 'through-file');
    fs.mkdirSync(base);
    fs.writeFileSync(path.join(base, 'models'), 'not a folder');
    const r = await cli(tmp, 'export', runDir, '--out', path.join(base, 'models', 'small'));
    expectOneErrorLine(r, /cannot write .*models\/small.*: .*through-file\/models is a file, not a folder/);
    expect(fs.readdirSync(base)).toEqual(['models']);
    const onFile = await cli(tmp, 'export', runDir, '--out', path.join(base, 'models'));
    expectOneErrorLine(onFile, /--out .*models is a file, not a folder/);
  });

  test('on a real full file system (a small tmpfs): one error line, no empty folder, an earlier export intact', async () => {
    const reason = tmpfsUnavailable();
    if (reason !== undefined) {
      console.warn(`skipped: ${reason}`);
      return;
    }
    const modelBytes = fs.statSync((await exportModel(runDir, path.join(tmp, 'size-probe', 'small'))).modelFile).size;
    // Room for one export (model.onnx, model.json, index.json) but not for a second model.onnx beside it.
    const size = Math.ceil((modelBytes * 1.5 + 16384) / 4096) * 4096;
    const mount = path.join(tmp, 'tmpfs');
    fs.mkdirSync(mount);
    const exportTo = (dir: string, flags = '') => `node ${JSON.stringify(BIN)} export ${JSON.stringify(runDir)} --out ${JSON.stringify(dir)} ${flags} 2>&1`;
    // In a private mount namespace, so nothing stays mounted if the test dies; files are listed before it ends.
    const script = [
      `mount -t tmpfs -o size=${size} deepvision-test ${JSON.stringify(mount)}`,
      `fill() { head -c $(( $(df --output=avail -B1 ${JSON.stringify(mount)} | tail -1) - $1 )) /dev/zero > ${JSON.stringify(path.join(mount, 'filler'))} 2>/dev/null; true; }`,
      'fill 4096',
      `${exportTo(path.join(mount, 'new', 'models', 'small'))}; echo "exit=$?"`,
      `echo "after-new: $(ls -A ${JSON.stringify(mount)} | tr '\\n' ' ')"`,
      `rm ${JSON.stringify(path.join(mount, 'filler'))}`,
      `${exportTo(path.join(mount, 'models', 'small'))} > /dev/null; echo "first=$?"`,
      `sum1=$(cat ${JSON.stringify(path.join(mount, 'models', 'small'))}/* | md5sum)`,
      'fill 4096',
      `${exportTo(path.join(mount, 'models', 'small'), '--fp16')}; echo "exit=$?"`,
      `sum2=$(cat ${JSON.stringify(path.join(mount, 'models', 'small'))}/* | md5sum)`,
      '[ "$sum1" = "$sum2" ] && echo intact || echo changed',
      `echo "after-again: $(ls -A ${JSON.stringify(path.join(mount, 'models'))} | tr '\\n' ' ')"`,
    ].join('\n');
    const r = spawnSync('unshare', ['-m', 'sh', '-c', script], { encoding: 'utf8', timeout: 60000, cwd: tmp });
    const lines = `${r.stdout}${r.stderr}`.split('\n').filter((l) => l !== '');
    expect(lines).toEqual([
      expect.stringMatching(new RegExp(`^error: no space left on device writing ${mount}/new/models/small/model\\.(onnx|json)$`)),
      'exit=1',
      'after-new: filler ',
      'first=0',
      expect.stringMatching(new RegExp(`^error: no space left on device writing ${mount}/models/small/model\\.(onnx|json)$`)),
      'exit=1',
      'intact',
      'after-again: index.json small ',
    ]);
  });
});

/** Why a real tmpfs cannot be mounted here (not root, no unshare), or undefined when it can. */
function tmpfsUnavailable(): string | undefined {
  if (process.platform !== 'linux') return 'tmpfs mounts need Linux';
  if (process.getuid?.() !== 0) return 'mounting a tmpfs needs root';
  const probe = spawnSync('unshare', ['-m', 'sh', '-c', `mount -t tmpfs -o size=65536 probe ${JSON.stringify(os.tmpdir())}`], { encoding: 'utf8' });
  if (probe.error !== undefined || probe.status !== 0) return `cannot mount a tmpfs in a private mount namespace (${probe.error?.message ?? probe.stderr.trim()})`;
  return undefined;
}
