/** The training-throughput measurement shared by bench/training.ts and bench/pipeline.ts. */
import * as ort from 'onnxruntime-node';
import type { ModelDefinition } from '../src/model/definition';
import { buildEvalGraph, buildTrainingGraph } from '../src/model/training-graph';
import { encodeModel } from '../src/onnx/write';
import { modelForCpu } from '../src/runtime/nchwc';
import type { OptimizerConfig } from '../src/optim/config';
import { buildOptimizerGraph } from '../src/optim/optimizer-graph';
import { Rng } from '../src/util/rng';
import { nativeConvStem, nativeWeightGrads, sessionOptionsFor } from '../src/train/training-sessions';
import { fusedOptimizerFor } from './fast-path';

export interface ThroughputRow {
  workload: string;
  batch: number;
  msPerStep: number;
  optimizerMs: number;
  imagesPerSecond: number;
}

/** One update's parts in ms, in the order they run (the native ones only where the fast path has them). */
export interface StepPhases {
  stemForward: number;
  session: number;
  nativeWeightGradients: number;
  stemBackward: number;
  optimizer: number;
}

/** A prepared training workload: `step()` runs one full update and returns its time, the optimizer's share and its phases. */
export interface Workload {
  label: string;
  batch: number;
  step(): Promise<{ ms: number; optimizerMs: number; phases: StepPhases }>;
  release(): Promise<void>;
}

/**
 * Times workloads in turn, one step of each per round (3 warm-up rounds), so that they share the machine's
 * slow and fast phases; returns each one's median.
 */
export async function measure(workloads: Workload[], steps: number): Promise<ThroughputRow[]> {
  const times = workloads.map(() => ({ total: [] as number[], update: [] as number[] }));
  for (let round = 0; round < steps + 3; round++) {
    for (const [i, w] of workloads.entries()) {
      const t = await w.step();
      if (round >= 3) {
        times[i]!.total.push(t.ms);
        times[i]!.update.push(t.optimizerMs);
      }
    }
  }
  await Promise.all(workloads.map((w) => w.release()));
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  return workloads.map((w, i) => {
    const ms = median(times[i]!.total);
    return { workload: w.label, batch: w.batch, msPerStep: Number(ms.toFixed(2)), optimizerMs: Number(median(times[i]!.update).toFixed(2)), imagesPerSecond: Number(((w.batch * 1000) / ms).toFixed(1)) };
  });
}

/** One workload measured alone: median over `steps` after 3 warm-up steps. */
export async function throughput(
  label: string, definition: ModelDefinition, config: Record<string, number>, optimizerConfig: OptimizerConfig, steps: number, threads: number, blockedConvolutions = true,
): Promise<ThroughputRow> {
  return (await measure([await prepareWorkload(label, definition, config, optimizerConfig, threads, blockedConvolutions)], steps))[0]!;
}

/**
 * One full update (training graph + optimizer graph) with preallocated outputs, as the trainer runs it.
 */
export async function prepareWorkload(
  label: string, definition: ModelDefinition, config: Record<string, number | string>, optimizerConfig: OptimizerConfig, threads: number, blockedConvolutions = true, batch = 64,
  nativeStem = true,
): Promise<Workload> {
  const size = Number(config.imageSize);
  const graph = buildTrainingGraph(definition, { config });
  const specs = graph.trainableSpecs;
  const optimizer = buildOptimizerGraph(specs, optimizerConfig);
  // The trainer's session options: one thread per core, no spin-waiting between the two sessions, its host memory.
  const options = sessionOptionsFor({ threads });
  // As the trainer on the CPU: convolutions lowered to ORT's channel-blocked kernels unless turned off.
  // The trainer's update path: the fused native optimizer where built (its slots under `optimizer.<name>` as the
  // trainer keeps them), else the optimizer graph; with it, convolution weight gradients from the native kernels.
  const fused = fusedOptimizerFor(specs, optimizerConfig, threads);
  // and a first Conv-BN-ReLU-pool block run natively around the session.
  const stem = fused && nativeStem ? nativeConvStem({ trainingGraphWith: (gradientOf) => buildTrainingGraph(definition, { config, gradientOf }), evalModel: buildEvalGraph(definition, { config }).model }, threads) : undefined;
  const weightGrads = fused ? nativeWeightGrads(stem?.model ?? graph.model, threads) : undefined;
  const trainModel = weightGrads?.model ?? stem?.model ?? graph.model;
  const session = await ort.InferenceSession.create(blockedConvolutions ? (await modelForCpu(trainModel)).bytes : encodeModel(trainModel), options);
  const sessionGrads = new Set(specs.map((p) => p.name).filter((name) => session.outputNames.includes(`${name}_grad`)));
  const update = await ort.InferenceSession.create(encodeModel(optimizer.model), options);
  const rng = new Rng(0);
  const state = new Map<string, ort.Tensor>();
  for (const [name, value] of graph.values) state.set(name, new ort.Tensor('float32', Float32Array.from(value.typed() as Float32Array), [...value.dims]));
  for (const name of optimizer.stateNames) {
    const shape = specs.find((p) => name.startsWith(`${p.name}.`))!.shape;
    state.set(name, new ort.Tensor('float32', new Float32Array(shape.reduce((a, b) => a * b, 1)), [...shape]));
    if (fused) state.set(`optimizer.${name}`, state.get(name)!);
  }
  const input = new ort.Tensor('float32', Float32Array.from({ length: batch * 3 * size * size }, () => rng.normal()), [batch, 3, size, size]);
  const labels = new ort.Tensor('int64', BigInt64Array.from({ length: batch }, () => BigInt(rng.int(Number(config.numClasses)))), [batch]);
  // Preallocated outputs (session.run with fetches): gradients written in place, parameters and state
  // double-buffered, so no step allocates or page-faults fresh output memory.
  const prealloc = process.env.DV_PREALLOC !== '0';
  const like = (t: ort.Tensor) => new ort.Tensor('float32', new Float32Array(t.size), [...t.dims]);
  const spare = new Map<string, ort.Tensor>([...state].map(([n, t]) => [n, like(t)]));
  const grads = new Map(specs.map((p) => [p.name, like(state.get(p.name)!)]));
  const loss = new ort.Tensor('float32', new Float32Array(1), []);
  let i = 0;
  const step = async () => {
    i++;
    const t0 = performance.now();
    const feeds: Record<string, ort.Tensor> = stem ? stem.stem.forward(state, { input, labels }) as Record<string, ort.Tensor> : { input, labels };
    const tSession = performance.now();
    for (const p of graph.parameters) if (session.inputNames.includes(p.name)) feeds[p.name] = state.get(p.name)!;
    let out: Record<string, ort.Tensor>;
    if (prealloc) {
      const fetches: Record<string, ort.Tensor> = { loss };
      for (const p of specs) if (sessionGrads.has(p.name)) fetches[`${p.name}_grad`] = grads.get(p.name)!;
      for (const [buffer, output] of graph.stateOutputs) if (session.outputNames.includes(output)) fetches[output] = spare.get(buffer)!;
      // The native weight gradients' inputs, in fresh arrays as the trainer gets them.
      for (const name of session.outputNames) if (!(name in fetches)) fetches[name] = null as unknown as ort.Tensor;
      out = (await session.run(feeds, fetches)) as Record<string, ort.Tensor>;
    } else out = (await session.run(feeds)) as Record<string, ort.Tensor>;
    const tWeightGrads = performance.now();
    weightGrads?.grads.complete(out);
    const tStemBackward = performance.now();
    stem?.stem.complete(out);
    const tOptimizer = performance.now();
    const phases = (end: number): StepPhases => ({
      stemForward: tSession - t0, session: tWeightGrads - tSession, nativeWeightGradients: tStemBackward - tWeightGrads, stemBackward: tOptimizer - tStemBackward, optimizer: end - tOptimizer,
    });
    if (fused) {
      fused.update(state, specs.map((p) => out[`${p.name}_grad`]!), 0.01, i);
      for (const [buffer, output] of graph.stateOutputs) {
        spare.set(buffer, state.get(buffer)!);
        state.set(buffer, out[output]!);
      }
      const end = performance.now();
      return { ms: end - t0, optimizerMs: end - tOptimizer, phases: phases(end) };
    }
    const optFeeds: Record<string, ort.Tensor> = {
      learning_rate: new ort.Tensor('float32', Float32Array.from([0.01]), [1]),
      step: new ort.Tensor('int64', BigInt64Array.from([BigInt(i)]), [1]),
    };
    for (const p of specs) {
      optFeeds[p.name] = state.get(p.name)!;
      optFeeds[`${p.name}_grad`] = out[`${p.name}_grad`]!;
    }
    for (const name of optimizer.stateNames) optFeeds[name] = state.get(name)!;
    let updated: Record<string, ort.Tensor>;
    if (prealloc) {
      const fetches: Record<string, ort.Tensor> = {};
      for (const p of specs) fetches[`${p.name}_updated`] = spare.get(p.name)!;
      for (const name of optimizer.stateNames) fetches[`${name}_updated`] = spare.get(name)!;
      updated = (await update.run(optFeeds, fetches)) as Record<string, ort.Tensor>;
    } else updated = (await update.run(optFeeds)) as Record<string, ort.Tensor>;
    const swap = (name: string, fresh: ort.Tensor) => {
      const old = state.get(name)!;
      state.set(name, fresh);
      spare.set(name, old);
    };
    for (const p of specs) swap(p.name, updated[`${p.name}_updated`]!);
    for (const name of optimizer.stateNames) swap(name, updated[`${name}_updated`]!);
    for (const [buffer, output] of graph.stateOutputs) swap(buffer, out[output]!);
    const end = performance.now();
    return { ms: end - t0, optimizerMs: end - tOptimizer, phases: phases(end) };
  };
  return { label, batch, step, release: async () => { await Promise.all([session.release(), update.release()]); } };
}

