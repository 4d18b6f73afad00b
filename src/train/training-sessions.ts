import * as os from 'node:os';
import * as ort from 'onnxruntime-node';
import type { Model } from '../ir/model';
import { encodeModel } from '../onnx/write';
import { modelForCpu } from '../runtime/nchwc';
import { modelForWebGpu } from '../runtime/webgpu-model';
import { DeviceLossSum } from './device-loss-sum';
import type { FrozenBackbone } from './frozen-backbone';
import { HostCopier, hostCopier } from './host-copier';
import type { ModelForData } from './model-for-data';
import { DeviceOptions, EventOptions, MAX_THREADS, OptimizationOptions } from './options';
import { TrainingStep } from '../portable/training-step';
import { FusedOptimizer } from '../native/fused-optimizer';
import { NativeWeightGrads } from '../native/weight-grads';
import { decodeModel } from '../onnx/read';
import { externalizeWeightGrads, hasExternalWeightGrads } from '../passes/external-weight-grads';
import { nativeAddon, nativeTurnedOff } from '../native/native-addon';
import { NativeConvStem } from '../native/conv-stem';
import { ConvStem, cutConvStem, findConvStem } from '../passes/cut-conv-stem';
import { CUT_GRADIENT } from '../model/training-graph';

/** The trainer options this part reads. */
type Options = DeviceOptions & Pick<OptimizationOptions, 'optimizer' | 'clipGradNorm'> & Pick<EventOptions, 'onNotice'>;

/**
 * The training model with its convolution weight gradients taken out for the native kernels, or undefined where it
 * has none or the kernels are not available (the fused optimizer's notice covers that case).
 */
export function nativeWeightGrads(model: Model, threads: number): { model: Model; grads: NativeWeightGrads } | undefined {
  if (typeof nativeAddon() === 'string' || !hasExternalWeightGrads(model)) return undefined;
  const copy = decodeModel(encodeModel(model));
  const recipes = externalizeWeightGrads(copy);
  const grads = NativeWeightGrads.create(recipes, ort.Tensor, threads);
  return typeof grads === 'string' ? undefined : { model: copy, grads };
}

/**
 * The training model with its first block (Conv, [batch norm], ReLU, 2x2 max pool) cut out for the native stem, or
 * undefined where it has no such block or the kernels are not available. The graph is built again with the pooled
 * value's gradient as an output, then cut.
 */
export function nativeConvStem(model: Pick<ModelForData, 'trainingGraphWith' | 'evalModel'>, threads: number): { model: Model; stem: NativeConvStem } | undefined {
  // The evaluation graph has the same block: models without one are not built again (MobileNetV2's: half a second).
  if (typeof nativeAddon() === 'string' || findConvStem(model.evalModel.graph, 'eval') === undefined) return undefined;
  let found: ConvStem | undefined;
  const graph = model.trainingGraphWith((forward) => {
    const match = findConvStem(forward);
    found = match?.stem;
    return match?.pooled;
  });
  if (found === undefined) return undefined;
  cutConvStem(graph.model, found, CUT_GRADIENT);
  const stem = NativeConvStem.create(found, CUT_GRADIENT, ort.Tensor, threads);
  return typeof stem === 'string' ? undefined : { model: graph.model, stem };
}

/** The options every session of a run is created with (the frozen backbone's too, less WebGPU). */
export function sessionOptionsFor(o: Pick<DeviceOptions, 'threads' | 'graphOptimizationLevel' | 'executionProviders'>): ort.InferenceSession.SessionOptions {
  const executionProviders = o.executionProviders ?? ['cpu'];
  return {
    // Three sessions take turns; idle thread pools that spin-wait for work would steal the cores from the one
    // running (measured: 15 % faster epochs on 2 cores without spinning).
    extra: { session: { intra_op: { allow_spinning: '0' } } },
    // 0 would leave the choice to onnxruntime, which measured 30 % slower here than one thread per core.
    intraOpNumThreads: Math.min(o.threads || os.availableParallelism(), MAX_THREADS), interOpNumThreads: 1, graphOptimizationLevel: o.graphOptimizationLevel ?? 'extended', executionProviders,
    ...(executionProviders[0] === 'cpu' ? hostMemoryOptions() : {}),
  };
}

/**
 * How CPU sessions hold their intermediate tensors. A memory pattern is one block per set of input shapes (the
 * training batch, the last partial batch, each evaluation batch), each at its plan's peak and kept for the
 * session's life; without patterns, tensors come and go and the memory is reused. onnxruntime's arena then only
 * adds its power-of-two growth where glibc's malloc keeps freed memory itself (the tunables bin/deepvision.js sets);
 * without them, large blocks go back to the OS and every step page-faults them in again (2x slower updates), so the
 * arena stays. Fine-tuning MobileNetV2 at batch 16: peak RSS 3.7 GB with both, 2.1 GB without patterns, 1.7 GB
 * without either, at the same speed (measured in alternation: README, Performance notes).
 */
function hostMemoryOptions(): Pick<ort.InferenceSession.SessionOptions, 'enableMemPattern' | 'enableCpuMemArena'> {
  // Both thresholds at 1 GiB or more: blocks of any size a step uses stay in the process once freed.
  const tunable = (name: string) => Number(new RegExp(`(?:^|:)glibc\\.malloc\\.${name}=(\\d+)`).exec(process.env.GLIBC_TUNABLES ?? '')?.[1] ?? 0);
  const mallocKeepsMemory = tunable('mmap_threshold') >= 2 ** 30 && tunable('trim_threshold') >= 2 ** 30;
  return { enableMemPattern: false, enableCpuMemArena: !mallocKeepsMemory };
}

/**
 * The onnxruntime sessions of a run (training, optimizer, evaluation) on its execution provider, and what places
 * state on the GPU and brings it back.
 */
export class TrainingSessions {
  private constructor(
    private readonly training: ort.InferenceSession,
    /** The optimizer graph's session, unless the fused native optimizer runs instead. */
    private readonly optimizer: ort.InferenceSession | undefined,
    /** The evaluation graph: loss and logits in eval mode. */
    readonly evaluation: ort.InferenceSession,
    /** One update: the training graph, then the optimizer graph. */
    readonly step: TrainingStep,
    /** On WebGPU, the training loss summed on the device (undefined on the host, which reads each loss). */
    readonly lossSum: DeviceLossSum | undefined,
    private readonly download: HostCopier | undefined,
    /** The inputs of the training graph. */
    readonly trainInputs: ReadonlySet<string>,
    /** The parameters the evaluation graph reads. */
    readonly evalParameters: string[],
  ) {}

  /** The sessions of `model`; with a frozen backbone, of the graphs after its cut. */
  static async create(
    o: Options, model: ModelForData, frozen: FrozenBackbone | undefined, sessionOptions: ort.InferenceSession.SessionOptions,
  ): Promise<TrainingSessions> {
    const { graph, optimizer, paramSpecs } = model;
    // On WebGPU, parameters, gradients, state and optimizer slots stay in GPU buffers between steps (outputs fed back
    // as inputs); only the loss, the logits and checkpoint downloads come to the host.
    const onGpu = (o.executionProviders ?? ['cpu'])[0] === 'webgpu';
    const located = (m: Model, cpuOutputs: string[]): ort.InferenceSession.SessionOptions => (onGpu
      ? { ...sessionOptions, preferredOutputLocation: Object.fromEntries(m.graph.outputs.map((v) => [v.name, cpuOutputs.includes(v.name) ? 'cpu' : 'gpu-buffer'])) }
      : sessionOptions);
    const onCpu = (o.executionProviders ?? ['cpu'])[0] === 'cpu';
    // Each provider gets the graph rewritten for its kernels (in memory only): blocked convolutions on the CPU, no
    // LogSoftmax on WebGPU.
    const forSession = async (m: Model) => (onCpu && o.blockedConvolutions !== false ? (await modelForCpu(m)).bytes : onGpu ? modelForWebGpu(m) : encodeModel(m));
    const evalModel = frozen?.evalModel ?? model.evalModel;
    const threads = sessionOptions.intraOpNumThreads ?? 1;
    // On the CPU's fast path, a first Conv-[BN]-ReLU-pool block runs natively around the session, and convolution
    // weight gradients leave the session for native kernels (a copy is rewritten).
    const fastPath = onCpu && o.nativeFastPath !== false;
    const stem = fastPath && frozen === undefined ? nativeConvStem(model, threads) : undefined;
    const sessionModel = stem?.model ?? frozen?.trainModel ?? graph.model;
    const weightGrads = fastPath ? nativeWeightGrads(sessionModel, threads) : undefined;
    const trainModel = weightGrads?.model ?? sessionModel;
    // On WebGPU the loss stays on the device too, summed there and read back every LOSS_READ_INTERVAL updates.
    const trainSession = await ort.InferenceSession.create(await forSession(trainModel), located(trainModel, onGpu ? [] : ['loss']));
    const lossSum = onGpu ? await DeviceLossSum.create(sessionOptions) : undefined;
    // On the CPU the optimizer runs natively, fused and in place, where the fast path is built; else as its graph.
    const fused = onCpu && o.nativeFastPath !== false ? FusedOptimizer.create(paramSpecs, o.optimizer, { clipGradNorm: o.clipGradNorm }, threads) : undefined;
    // DEEPVISION_NATIVE=off asks for the portable path: only a fallback the user did not ask for is worth a line.
    if (typeof fused === 'string' && !nativeTurnedOff()) o.onNotice?.(`note: the native training fast path is not available (${fused}); training uses the portable ONNX optimizer graph`);
    const inPlace = fused instanceof FusedOptimizer ? fused : undefined;
    const optimizerSession = inPlace !== undefined ? undefined : await ort.InferenceSession.create(encodeModel(optimizer.model), located(optimizer.model, []));
    const evalSession = await ort.InferenceSession.create(await forSession(evalModel), located(evalModel, ['loss', 'logits']));
    const shapeOf = (name: string) => graph.values.get(name)?.dims ?? paramSpecs.find((p) => name.startsWith(`optimizer.${p.name}.`))!.shape;
    const download = onGpu ? await hostCopier([...graph.values.keys(), ...optimizer.stateNames.map((n) => `optimizer.${n}`)], shapeOf, sessionOptions) : undefined;
    // One update (training graph, then optimizer graph) is driven by the module the page's Teach mode shares.
    const trainingStep = new TrainingStep(trainSession, optimizerSession, {
      inputs: graph.parameters.map((p) => p.name).filter((name) => trainSession.inputNames.includes(name)),
      trainable: paramSpecs.map((p) => p.name), slots: optimizer.stateNames, stateOutputs: graph.stateOutputs,
    }, ort.Tensor, {
      inPlace,
      prepareFeeds: stem && ((state, batch) => stem.stem.forward(state, batch)),
      completeGradients: (weightGrads || stem) && ((out) => {
        weightGrads?.grads.complete(out);
        stem?.stem.complete(out);
      }),
    });
    return new TrainingSessions(
      trainSession, optimizerSession, evalSession, trainingStep, lossSum, download,
      new Set(trainSession.inputNames), graph.parameters.map((p) => p.name).filter((name) => evalSession.inputNames.includes(name)),
    );
  }

  /** The state with every tensor on the host (downloaded on WebGPU; as it is elsewhere). */
  async onHost(tensors: Map<string, ort.Tensor>): Promise<Map<string, ort.Tensor>> {
    return this.download ? await this.download(tensors) : tensors;
  }

  async release(): Promise<void> {
    await Promise.all([this.training.release(), this.optimizer?.release(), this.evaluation.release(), this.download?.release(), this.lossSum?.release()]);
  }
}
