/**
 * Captioning-decoder training throughput (tokens/s), next to torch.nn.LSTM with the same sizes in the same run.
 *
 * The decoder is graphs/captioner.ts's `reference` variant (Show and Tell) on the frozen backbone's cached
 * features, which is what `deepvision train` trains for it: feature [N, 1280] -> Linear(1280 -> 256) + batch norm
 * = the LSTM's input at step 0; Embedding(vocabulary, 256) of the caption's L tokens (teacher forcing) = its inputs
 * at steps 1..L; nn.LSTM(256 -> 512) over the L + 1 steps; Linear(512 -> vocabulary) on steps 1..L; masked
 * cross-entropy against the L targets. Batch 32, L = 20 tokens (640 an update), vocabulary 2,500, Adam lr 1e-3.
 * deepvision has no BatchNorm1d: as graphs/captioner.ts, BatchNorm2d over [N, 256, 1, 1].
 *
 * One update = the training graph (buildTrainingGraph, task 'captioning') + the optimizer graph, run as the trainer
 * runs them (src/train/trainer.ts): intra-op threads = cores, no spin-waiting, graph optimization `extended`, the
 * CPU model from modelForCpu, outputs returned fresh and fed back as the next update's inputs (--preallocated:
 * written into tensors allocated once, as bench/training-throughput.ts does).
 *
 * PyTorch (bench/torch_lstm_decoder.py: Debian's /usr/bin/python3, torch 1.13, the same threads, the same malloc
 * tunables, OpenBLAS with OpenMP) runs as one long-lived process that does one update per request, so that its
 * updates alternate with ours one by one: this machine has slow and fast phases, and other processes come and go.
 * Each side has two ways of treating the LSTM, measured in turn (unmasked, padded, masked, packed):
 *   deepvision `unmasked`: the captioner as graphs/captioner.ts builds it, padding left out of the loss only;
 *              `masked`: the LSTM also given the mask (forward(x, { mask }), pack_padded_sequence's semantics);
 *   PyTorch    `padded`: nn.LSTM over the padded batch, padding left out of the loss only (ignore_index);
 *              `packed`: pack_padded_sequence, as tutorials write it: no work on padding at all.
 * The ratios pair unmasked with padded (the same arithmetic) and masked with packed. With --lengths full (default)
 * every caption has L real tokens; --lengths varied draws lengths in [L/2, L] (tokens/s counts real tokens).
 *
 *   node bench/run.js bench/decoder.ts [--rounds 5] [--steps 20] [--threads N] [--lengths full|varied] [--json]
 *                                      [--omp-wait-policy passive|default] [--preallocated] [--ours-only] [--optimizer adam|sgd]
 *   node bench/run.js bench/decoder.ts --profile [--unmasked]   # kernel time per op type of a training step
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as readline from 'node:readline';
import * as ort from 'onnxruntime-node';
import * as F from '../src/dsl/functional';
import { Tensor } from '../src/dsl/builder';
import { defineModel } from '../src/model/definition';
import { buildTrainingGraph } from '../src/model/training-graph';
import { BatchNorm2d, Embedding, Linear } from '../src/nn/layers';
import { Module } from '../src/nn/module';
import { LSTM } from '../src/nn/recurrent';
import { encodeModel } from '../src/onnx/write';
import type { OptimizerConfig } from '../src/optim/config';
import { buildOptimizerGraph } from '../src/optim/optimizer-graph';
import { fusedOptimizerFor } from './fast-path';
import { modelForCpu } from '../src/runtime/nchwc';
import { Rng } from '../src/util/rng';
import { sessionOptionsFor } from '../src/train/training-sessions';

const args = process.argv.slice(2);
const option = (name: string, fallback: number) => (args.includes(name) ? Number(args[args.indexOf(name) + 1]) : fallback);
const text = (name: string, fallback: string) => (args.includes(name) ? args[args.indexOf(name) + 1]! : fallback);
const rounds = option('--rounds', 5);
const steps = option('--steps', 20);
const threads = option('--threads', os.cpus().length);
const BATCH = option('--batch', 32);
const LENGTH = option('--length', 20);
const VOCAB = option('--vocab', 2500);
const FEATURES = 1280;
const EMBED = 256;
const HIDDEN = 512;
const LEARNING_RATE = 1e-3;
const lengthsKind = text('--lengths', 'full');
const preallocated = args.includes('--preallocated');
const ompWaitPolicy = text('--omp-wait-policy', 'passive');
// Adam is what captioners train with; --optimizer sgd (plain SGD, lr 0.1, as ../shared/bench/torch_lstm.py) shows
// the training graphs side by side with an update that costs almost nothing on either side.
const optimizerKind = text('--optimizer', 'adam');
if (optimizerKind !== 'adam' && optimizerKind !== 'sgd') throw new Error(`--optimizer must be adam or sgd, got ${optimizerKind}`);
const OPTIMIZER: OptimizerConfig = optimizerKind === 'adam' ? { kind: 'adam' } : { kind: 'sgd' };
const UPDATE_RATE = optimizerKind === 'adam' ? LEARNING_RATE : 0.1;
if (lengthsKind !== 'full' && lengthsKind !== 'varied') throw new Error(`--lengths must be full or varied, got ${lengthsKind}`);
if (ompWaitPolicy !== 'passive' && ompWaitPolicy !== 'default') throw new Error(`--omp-wait-policy must be passive or default, got ${ompWaitPolicy}`);

const TUNABLES = 'glibc.malloc.mmap_threshold=4294967295:glibc.malloc.trim_threshold=4294967295';

/**
 * graphs/captioner.ts's reference decoder (inject 'first') from the features on. `masked` also gives the LSTM the
 * loss's mask, read from the `mask` input that the captioning training graph declares before it traces forward.
 */
class ReferenceDecoder extends Module {
  readonly project = new Linear(FEATURES, EMBED);
  readonly norm = new BatchNorm2d(EMBED);
  readonly embed = new Embedding(VOCAB, EMBED, { paddingIdx: 0 });
  readonly lstm = new LSTM(EMBED, HIDDEN);
  readonly classifier = new Linear(HIDDEN, VOCAB);

  constructor(readonly masked: boolean) {
    super();
  }

  forward(features: Tensor, captions: Tensor): Tensor {
    const image = F.flatten(this.norm.forward(F.unsqueeze(this.project.forward(features), [2, 3])));
    const x = F.concat([F.unsqueeze(image, [1]), this.embed.forward(captions)], 1);
    let mask: Tensor | undefined;
    if (this.masked) {
      const b = features.builder;
      const input = b.graph.inputs.find((v) => v.name === 'mask');
      if (input === undefined) throw new Error('the captioning training graph has no `mask` input to give the LSTM');
      const tokens = new Tensor(b, input);
      // Step 0 (the image) is always real: [N, 1 + L] = [1, mask].
      mask = F.concat([F.add(F.mul(F.slice(tokens, [0], [1], [1]), 0), 1), tokens], 1);
    }
    const { output } = this.lstm.forward(x, mask === undefined ? {} : { mask });
    return this.classifier.forward(F.slice(output, [1], [LENGTH + 1], [1]));
  }
}

const decoder = (masked: boolean) => defineModel({
  name: 'caption-decoder',
  task: 'captioning',
  defaults: {},
  inputs: () => [
    { name: 'features', shape: ['batch', FEATURES] },
    { name: 'captions', dtype: 'int64', shape: ['batch', LENGTH] },
  ],
  create: () => new ReferenceDecoder(masked),
});

/** Real tokens per caption, seeded: all L with --lengths full. */
function captionLengths(): number[] {
  const rng = new Rng(7);
  const low = Math.max(1, Math.floor(LENGTH / 2));
  return Array.from({ length: BATCH }, () => (lengthsKind === 'varied' ? low + rng.int(LENGTH - low + 1) : LENGTH));
}

/** One update: its time, the optimizer graph's (or optimizer.step's) share, the loss. */
interface Timing { ms: number; optimizerMs: number; loss: number }

interface Workload {
  label: string;
  step(): Promise<Timing>;
  release(): Promise<void>;
  session: ort.InferenceSession;
  feeds(): Record<string, ort.Tensor>;
}

/** The trainer's session options (one thread per core, no spin-waiting, its host memory), with `extra` on top. */
const sessionOptions = (extra: Partial<ort.InferenceSession.SessionOptions> = {}): ort.InferenceSession.SessionOptions => ({ ...sessionOptionsFor({ threads }), ...extra });

async function prepare(masked: boolean, lengths: number[], extra: Partial<ort.InferenceSession.SessionOptions> = {}): Promise<Workload> {
  // As the trainer builds a captioner's training graph: inputs features, captions, targets, mask, then parameters
  // and buffers; outputs loss, `<param>_grad`, the updated running statistics.
  const graph = buildTrainingGraph(decoder(masked));
  const specs = graph.trainableSpecs;
  const optimizer = buildOptimizerGraph(specs, OPTIMIZER);
  const session = await ort.InferenceSession.create((await modelForCpu(graph.model)).bytes, sessionOptions(extra));
  const update = await ort.InferenceSession.create(encodeModel(optimizer.model), sessionOptions());
  // The trainer's update path: the fused native optimizer where built (--portable: the optimizer graph).
  const fused = fusedOptimizerFor(specs, OPTIMIZER, threads);
  const rng = new Rng(0);
  const tensors = new Map<string, ort.Tensor>();
  for (const [name, value] of graph.values) tensors.set(name, new ort.Tensor('float32', Float32Array.from(value.typed() as Float32Array), [...value.dims]));
  for (const name of optimizer.stateNames) {
    const shape = specs.find((p) => name.startsWith(`${p.name}.`))!.shape;
    tensors.set(`optimizer.${name}`, new ort.Tensor('float32', new Float32Array(shape.reduce((a, b) => a * b, 1)), [...shape]));
  }
  const tokens = BATCH * LENGTH;
  const data: Record<string, ort.Tensor> = {
    features: new ort.Tensor('float32', Float32Array.from({ length: BATCH * FEATURES }, () => rng.normal()), [BATCH, FEATURES]),
    captions: new ort.Tensor('int64', BigInt64Array.from({ length: tokens }, () => BigInt(1 + rng.int(VOCAB - 1))), [BATCH, LENGTH]),
    targets: new ort.Tensor('int64', BigInt64Array.from({ length: tokens }, () => BigInt(1 + rng.int(VOCAB - 1))), [BATCH, LENGTH]),
    mask: new ort.Tensor('float32', Float32Array.from({ length: tokens }, (_, i) => (i % LENGTH < lengths[Math.floor(i / LENGTH)]! ? 1 : 0)), [BATCH, LENGTH]),
  };
  const feeds = () => {
    const f: Record<string, ort.Tensor> = { ...data };
    for (const p of graph.parameters) f[p.name] = tensors.get(p.name)!;
    return f;
  };
  // --preallocated: outputs written into tensors allocated once (session.run with fetches; gradients in place,
  // parameters, slots and statistics double-buffered), as bench/training-throughput.ts does; the trainer doesn't.
  const like = (t: ort.Tensor) => new ort.Tensor('float32', new Float32Array(t.size), [...t.dims]);
  const spare = new Map<string, ort.Tensor>(preallocated ? [...tensors].map(([n, t]) => [n, like(t)]) : []);
  const grads = new Map<string, ort.Tensor>(preallocated ? specs.map((p) => [p.name, like(tensors.get(p.name)!)]) : []);
  const loss = new ort.Tensor('float32', new Float32Array(1), []);
  let count = 0;
  const step = async () => {
    count++;
    const t0 = performance.now();
    let out: ort.InferenceSession.OnnxValueMapType;
    if (preallocated) {
      const fetches: Record<string, ort.Tensor> = { loss };
      for (const p of specs) fetches[`${p.name}_grad`] = grads.get(p.name)!;
      for (const [buffer, output] of graph.stateOutputs) fetches[output] = spare.get(buffer)!;
      out = await session.run(feeds(), fetches);
    } else out = await session.run(feeds());
    if (fused) {
      const tFused = performance.now();
      fused.update(tensors, specs.map((p) => out[`${p.name}_grad`] as ort.Tensor), UPDATE_RATE, count);
      for (const [buffer, output] of graph.stateOutputs) {
        if (preallocated) spare.set(buffer, tensors.get(buffer)!);
        tensors.set(buffer, out[output] as ort.Tensor);
      }
      const end = performance.now();
      const value = ((out.loss as ort.Tensor).data as Float32Array)[0]!;
      if (!Number.isFinite(value)) throw new Error(`loss ${value} at update ${count}`);
      return { ms: end - t0, optimizerMs: end - tFused, loss: value };
    }
    const optFeeds: Record<string, ort.Tensor> = {
      learning_rate: new ort.Tensor('float32', Float32Array.from([UPDATE_RATE]), [1]),
      step: new ort.Tensor('int64', BigInt64Array.from([BigInt(count)]), [1]),
    };
    for (const p of specs) {
      optFeeds[p.name] = tensors.get(p.name)!;
      optFeeds[`${p.name}_grad`] = out[`${p.name}_grad`]!;
    }
    for (const name of optimizer.stateNames) optFeeds[name] = tensors.get(`optimizer.${name}`)!;
    const tOptimizer = performance.now();
    let updated: ort.InferenceSession.OnnxValueMapType;
    if (preallocated) {
      const fetches: Record<string, ort.Tensor> = {};
      for (const p of specs) fetches[`${p.name}_updated`] = spare.get(p.name)!;
      for (const name of optimizer.stateNames) fetches[`${name}_updated`] = spare.get(`optimizer.${name}`)!;
      updated = await update.run(optFeeds, fetches);
    } else updated = await update.run(optFeeds);
    const replace = (name: string, fresh: ort.Tensor) => {
      if (preallocated) spare.set(name, tensors.get(name)!);
      tensors.set(name, fresh);
    };
    for (const p of specs) replace(p.name, updated[`${p.name}_updated`] as ort.Tensor);
    for (const name of optimizer.stateNames) replace(`optimizer.${name}`, updated[`${name}_updated`] as ort.Tensor);
    for (const [buffer, output] of graph.stateOutputs) replace(buffer, out[output] as ort.Tensor);
    const end = performance.now();
    const value = ((out.loss as ort.Tensor).data as Float32Array)[0]!;
    if (!Number.isFinite(value)) throw new Error(`loss ${value} at update ${count}`);
    return { ms: end - t0, optimizerMs: end - tOptimizer, loss: value };
  };
  return { label: masked ? 'masked' : 'unmasked', step, session, feeds, release: async () => { await Promise.all([session.release(), update.release()]); } };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/**
 * PyTorch's side as a long-lived process (bench/torch_lstm_decoder.py --serve) that runs one update of the named
 * variant per request and answers with its time, so that its updates alternate with ours one by one; or why it
 * cannot run.
 */
interface Torch {
  system: string;
  step(variant: 'packed' | 'padded'): Promise<Timing>;
  close(): void;
}

async function startPyTorch(lengths: number[]): Promise<Torch | string> {
  const script = path.join(__dirname, 'torch_lstm_decoder.py');
  if (!fs.existsSync('/usr/bin/python3')) return '/usr/bin/python3 not found';
  const openmpBlas = '/usr/lib/x86_64-linux-gnu/openblas-openmp';
  // Debian's torch does its matrix products in whatever libblas.so.3 is: without OpenBLAS that is the reference
  // BLAS, 20x slower (an LSTM update took 4.5 s instead of 0.2 s), and a comparison with it means nothing.
  if (!fs.existsSync(openmpBlas)) {
    let blas = '';
    try { blas = fs.realpathSync('/usr/lib/x86_64-linux-gnu/libblas.so.3'); } catch { /* none */ }
    if (blas === '' || blas.includes('/blas/')) return `PyTorch would use the reference BLAS (${blas || 'no libblas.so.3'}): apt-get install libopenblas0-openmp`;
  }
  // The malloc tunables as ours (without them PyTorch page-faults its fresh tensors every update). OpenMP threads
  // wait passively, as ours do (allow_spinning 0): with OpenMP's default (spin, then sleep) PyTorch's update took
  // 4-7x as long whenever another process held one of the 2 cores, and its idle spinning would also steal from
  // our updates in between. --omp-wait-policy default keeps OpenMP's default (on an idle machine about 5 % faster).
  const env: NodeJS.ProcessEnv = { ...process.env, GLIBC_TUNABLES: TUNABLES, ...(fs.existsSync(openmpBlas) ? { LD_LIBRARY_PATH: openmpBlas } : {}) };
  if (ompWaitPolicy === 'default') delete env.OMP_WAIT_POLICY;
  else env.OMP_WAIT_POLICY = 'PASSIVE';
  const proc = spawn('/usr/bin/python3', [script, '--serve', '--threads', String(threads), '--batch', String(BATCH), '--length', String(LENGTH),
    '--vocab', String(VOCAB), '--optimizer', optimizerKind, '--lengths-json', JSON.stringify(lengths)], { env, stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  proc.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString(); });
  const lines = readline.createInterface({ input: proc.stdout })[Symbol.asyncIterator]();
  const next = async (): Promise<Record<string, unknown>> => {
    const line = await lines.next();
    if (line.done) throw new Error(`torch_lstm_decoder.py ended: ${stderr.trim().split('\n').pop() ?? ''}`);
    return JSON.parse(line.value) as Record<string, unknown>;
  };
  try {
    const ready = await next();
    return {
      system: String(ready.system),
      step: async (variant) => {
        proc.stdin.write(`${variant}\n`);
        const r = await next();
        return { ms: Number(r.ms), optimizerMs: Number(r.optimizerMs), loss: Number(r.loss) };
      },
      close: () => { proc.stdin.end('quit\n'); },
    };
  } catch (err) {
    proc.kill();
    return (err as Error).message;
  }
}

/** Our two variants and PyTorch's, one update of each in turn. */
const ORDER = [['ours', 'unmasked'], ['torch', 'padded'], ['ours', 'masked'], ['torch', 'packed']] as const;
type Variant = (typeof ORDER)[number][1];

/** Kernel time per op type of one training step (not the optimizer), as bench/profile.ts sums it. */
async function profile(masked: boolean, lengths: number[]): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'deepvision-decoder-profile-'));
  const w = await prepare(masked, lengths, { enableProfiling: true, profileFilePrefix: path.join(dir, 'p') });
  const warmup = 3;
  const runs = Number(process.env.RUNS ?? 10);
  const wall: number[] = [];
  for (let i = 0; i < warmup + runs; i++) {
    const t0 = performance.now();
    await w.session.run(w.feeds());
    if (i >= warmup) wall.push(performance.now() - t0);
  }
  w.session.endProfiling();
  const file = fs.readdirSync(dir).find((f) => f.startsWith('p'))!;
  const events = JSON.parse(fs.readFileSync(path.join(dir, file), 'utf8')) as { cat: string; name: string; dur: number; args?: { op_name?: string; output_type_shape?: Record<string, number[]>[] } }[];
  const perNode = new Map<string, { op: string; times: number[]; shape: string }>();
  for (const e of events) {
    if (e.cat !== 'Node' || !e.name.endsWith('_kernel_time')) continue;
    const key = e.name.replace('_kernel_time', '');
    const shape = (e.args?.output_type_shape ?? []).map((o) => `[${Object.values(o)[0]?.join(', ') ?? ''}]`).join(' ');
    if (!perNode.has(key)) perNode.set(key, { op: e.args?.op_name ?? '?', times: [], shape });
    perNode.get(key)!.times.push(e.dur);
  }
  const byOp = new Map<string, { us: number; nodes: number }>();
  const byNode: [string, number][] = [];
  let total = 0;
  for (const [name, { op, times, shape }] of perNode) {
    const us = median(times.slice(warmup));
    const entry = byOp.get(op) ?? { us: 0, nodes: 0 };
    byOp.set(op, { us: entry.us + us, nodes: entry.nodes + 1 });
    byNode.push([`${op} ${name} -> ${shape}`, us]);
    total += us;
  }
  await w.release();
  fs.rmSync(dir, { recursive: true, force: true });
  const rows = [...byOp].sort((a, b) => b[1].us - a[1].us).map(([op, { us, nodes }]) => ({ op, nodes, ms: Number((us / 1000).toFixed(2)), percent: Number(((100 * us) / total).toFixed(1)) }));
  const slowest = byNode.sort((a, b) => b[1] - a[1]).slice(0, Number(process.env.TOP ?? 15)).map(([node, us]) => ({ node, ms: Number((us / 1000).toFixed(2)) }));
  if (args.includes('--json')) {
    console.log(JSON.stringify({ workload: w.label, threads, kernelMs: Number((total / 1000).toFixed(2)), wallMs: Number(median(wall).toFixed(2)), byOp: rows, slowest }));
    return;
  }
  console.log(`decoder training step (${w.label} LSTM), batch ${BATCH}, ${LENGTH} tokens a caption, vocabulary ${VOCAB}, ${threads} threads: ${(total / 1000).toFixed(1)} ms of kernel time, ${median(wall).toFixed(1)} ms wall (medians of ${runs} runs after ${warmup})`);
  for (const r of rows) console.log(`  ${r.op.padEnd(22)}${String(r.nodes).padStart(5)} nodes${r.ms.toFixed(2).padStart(9)} ms${r.percent.toFixed(1).padStart(7)} %`);
  console.log('slowest nodes:');
  for (const s of slowest) console.log(`  ${s.ms.toFixed(2).padStart(8)} ms  ${s.node}`);
}

(async () => {
  const lengths = captionLengths();
  const tokens = lengths.reduce((a, b) => a + b, 0);
  const json = args.includes('--json');
  if (args.includes('--profile')) {
    await profile(!args.includes('--unmasked'), lengths);
    return;
  }
  const say = (line: string) => { if (!json) console.log(line); };
  const ours = { masked: await prepare(true, lengths), unmasked: await prepare(false, lengths) };
  // Started before our warm-up: the fork leaves our pages copy-on-write, and the next updates page-fault them back
  // in (see README, Performance notes), which no training run pays.
  const torch = args.includes('--ours-only') ? 'not run (--ours-only)' : await startPyTorch(lengths);
  const withTorch = typeof torch !== 'string';
  const order = ORDER.filter(([side]) => side === 'ours' || withTorch);
  say(`caption decoder training (batch ${BATCH}, ${LENGTH} tokens a caption, vocabulary ${VOCAB}, hidden ${HIDDEN}, ${optimizerKind === 'adam' ? 'Adam' : 'SGD'}; ${tokens} real tokens an update), `
    + `onnxruntime-node ${ort.env.versions.node}, ${threads} threads, ${rounds} round(s) of ${steps} updates of each, alternating update by update`);
  say(withTorch ? `PyTorch: ${torch.system}` : `PyTorch skipped: ${torch}`);
  const losses: Partial<Record<Variant, number>> = {};
  const optimizerTimes: Record<Variant, number[]> = { masked: [], packed: [], unmasked: [], padded: [] };
  const run = async (side: 'ours' | 'torch', variant: Variant): Promise<number> => {
    const r = side === 'ours' ? await ours[variant as 'masked' | 'unmasked'].step() : await (torch as Torch).step(variant as 'packed' | 'padded');
    losses[variant] = r.loss;
    optimizerTimes[variant].push(r.optimizerMs);
    return r.ms;
  };
  // Warm-up: 8 updates of each (the first updates allocate and page-fault), so that both have made as many
  // updates when their losses are shown.
  for (let i = 0; i < 8; i++) for (const [side, variant] of order) await run(side, variant);
  const perRound: Record<Variant, number[]> = { masked: [], packed: [], unmasked: [], padded: [] };
  const ratios = { 'unmasked/padded': [] as number[], 'masked/packed': [] as number[] };
  for (let round = 0; round < rounds; round++) {
    const times: Record<Variant, number[]> = { masked: [], packed: [], unmasked: [], padded: [] };
    for (let i = 0; i < steps; i++) for (const [side, variant] of order) times[variant].push(await run(side, variant));
    const m = Object.fromEntries(Object.entries(times).map(([k, v]) => [k, v.length ? median(v) : NaN])) as Record<Variant, number>;
    for (const k of Object.keys(m) as Variant[]) if (!Number.isNaN(m[k])) perRound[k].push(m[k]);
    if (withTorch) {
      ratios['unmasked/padded'].push(m.padded / m.unmasked);
      ratios['masked/packed'].push(m.packed / m.masked);
    }
    say(`round ${round + 1}: deepvision unmasked ${m.unmasked.toFixed(1)} ms, masked ${m.masked.toFixed(1)} ms`
      + (withTorch ? `; PyTorch padded ${m.padded.toFixed(1)} ms, packed ${m.packed.toFixed(1)} ms; throughput ratios ${(m.padded / m.unmasked).toFixed(2)}, ${(m.packed / m.masked).toFixed(2)}` : ''));
  }
  if (withTorch) torch.close();
  await Promise.all(Object.values(ours).map((w) => w.release()));
  const row = (variant: Variant) => ({
    msPerUpdate: Number(median(perRound[variant]).toFixed(2)), tokensPerSecond: Number(((tokens * 1000) / median(perRound[variant])).toFixed(1)),
    optimizerMs: Number(median(optimizerTimes[variant]).toFixed(2)), rounds: perRound[variant].map((x) => Number(x.toFixed(2))), lastLoss: losses[variant],
  });
  const summary = {
    ours: { unmasked: row('unmasked'), masked: row('masked') },
    pytorch: withTorch ? { padded: row('padded'), packed: row('packed') } : undefined,
    medianRatio: withTorch ? { 'unmasked/padded': Number(median(ratios['unmasked/padded']).toFixed(2)), 'masked/packed': Number(median(ratios['masked/packed']).toFixed(2)) } : undefined,
  };
  if (json) {
    console.log(JSON.stringify({
      system: `deepvision (onnxruntime-node ${ort.env.versions.node})`, pytorchSystem: withTorch ? torch.system : undefined, skipped: withTorch ? undefined : torch,
      threads, batch: BATCH, length: LENGTH, vocab: VOCAB, hidden: HIDDEN, lengths: lengthsKind, tokensPerUpdate: tokens, steps, rounds, ...summary,
    }));
    return;
  }
  const line = (label: string, r: ReturnType<typeof row>) => console.log(`  ${label.padEnd(20)}${r.tokensPerSecond.toFixed(0).padStart(7)}  (${r.msPerUpdate.toFixed(1)} ms an update, optimizer ${r.optimizerMs.toFixed(1)} ms; loss after the last ${r.lastLoss?.toFixed(3)})`);
  console.log(`medians over ${rounds} round(s), tokens/s:`);
  line('deepvision unmasked', summary.ours.unmasked);
  line('deepvision masked', summary.ours.masked);
  if (summary.pytorch !== undefined) {
    line('PyTorch padded', summary.pytorch.padded);
    line('PyTorch packed', summary.pytorch.packed);
    console.log(`median throughput ratio deepvision / PyTorch (target >= 1.5): unmasked vs padded ${summary.medianRatio!['unmasked/padded'].toFixed(2)}, masked vs packed ${summary.medianRatio!['masked/packed'].toFixed(2)}`);
  }
})().catch((err) => {
  console.error(err);
  process.exit(1);
});
