/**
 * The native fast path's binary (src/native/*.cc, built at install by scripts/build-native.mjs into build/), loaded
 * once. Where it is missing or does not load, callers get the reason and stay on the portable ONNX path.
 *
 * DEEPVISION_NATIVE=off turns it off (CI runs the training tests on both paths); DEEPVISION_NATIVE_ADDON names
 * another build of it (the AddressSanitizer lane).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

/** The addon's functions: src/native/fused-optimizer.cc, depthwise-weight-grad.cc, conv-weight-grad.cc and conv-stem.cc. Every array is updated in place. */
export interface NativeAddon {
  /** geometry: [N, C, H, W, OH, OW, kH, kW, strideH, strideW, padTop, padLeft, dilationH, dilationW]; writes dw [C, 1, kH, kW]. */
  depthwiseWeightGrad(x: Float32Array, dy: Float32Array, dw: Float32Array, geometry: Int32Array, threads: number): void;
  /** geometry: [N, C, H, W, M, OH, OW, kH, kW, strideH, strideW, padTop, padLeft, dilationH, dilationW]; writes dw [M, C, kH, kW]. */
  convWeightGrad(x: Float32Array, dy: Float32Array, dw: Float32Array, geometry: Int32Array, threads: number): void;
  /**
   * A Conv -> [BatchNormalization (training)] -> ReLU -> MaxPool 2x2 block's forward (src/native/conv-stem.cc). floats: [x, w, bias,
   * gamma, beta, runningMean, runningVar, z, pooled, mean, invstd, runningMeanOut, runningVarOut], the last six
   * written; geometry: [N, C, H, W, M, kH, kW, padTop, padLeft, padBottom, padRight]; settings: [epsilon, momentum,
   * normalize (0: no batch norm)].
   */
  stemForward(floats: Float32Array[], ties: Uint8Array, geometry: Int32Array, settings: Float32Array, threads: number): void;
  /** Its backward. floats: [x, z, pooled, pooledGrad, gamma, mean, invstd, weightGrad, gammaGrad, betaGrad], the last three written; settings: [normalize]. */
  stemBackward(floats: Float32Array[], ties: Uint8Array, geometry: Int32Array, settings: Float32Array, threads: number): void;
  sgd(params: Float32Array[], grads: Float32Array[], buffers: Float32Array[] | null, learningRates: Float32Array, settings: SgdSettings, threads: number): void;
  adam(params: Float32Array[], grads: Float32Array[], expAvg: Float32Array[], expAvgSq: Float32Array[], scalars: Float32Array, settings: AdamSettings, threads: number): void;
  sumOfSquares(grads: Float32Array[], threads: number): number;
}

/** SGD's scalars, each already rounded to float32 as the optimizer graph rounds it. */
interface SgdSettings {
  clip: boolean;
  decay: boolean;
  momentum: boolean;
  dampening: boolean;
  nesterov: boolean;
  clipScale: number;
  weightDecay: number;
  mu: number;
  bufferScale: number;
}

/** Adam's and AdamW's scalars shared by all parameters (the per-parameter ones travel in a Float32Array). */
interface AdamSettings {
  clip: boolean;
  l2: boolean;
  decoupled: boolean;
  clipScale: number;
  weightDecay: number;
  oneMinusBeta1: number;
  oneMinusBeta2: number;
}

/** Where the optimized build lands, from src/native or dist/native alike. */
const BUILT = path.join(__dirname, '..', '..', 'build', 'deepvision-native.node');

let loaded: NativeAddon | string | undefined;

/** The addon, or one line saying why it is not available. */
export function nativeAddon(): NativeAddon | string {
  loaded ??= load();
  return loaded;
}

/** Whether the user asked for the portable path (DEEPVISION_NATIVE=off): then its absence needs no notice. */
export function nativeTurnedOff(): boolean {
  return process.env.DEEPVISION_NATIVE === 'off';
}

function load(): NativeAddon | string {
  if (nativeTurnedOff()) return 'turned off by DEEPVISION_NATIVE=off';
  const file = path.resolve(process.env.DEEPVISION_NATIVE_ADDON ?? BUILT);
  // Named from the working folder where it lies below it (build/deepvision-native.node), else in full.
  const relative = path.relative(process.cwd(), file);
  const shown = relative.startsWith('..') ? file : relative;
  if (!fs.existsSync(file)) return `${shown} is not built (npm run build:native builds it; it needs a C++ compiler)`;
  try {
    // A compiled Node-API module is loaded with require; nothing else can load it.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const addon = require(file) as Partial<NativeAddon>;
    const functions = [addon.sgd, addon.adam, addon.sumOfSquares, addon.depthwiseWeightGrad, addon.convWeightGrad, addon.stemForward, addon.stemBackward];
    if (functions.some((f) => typeof f !== 'function')) return `${shown} is an older build (npm run build:native rebuilds it)`;
    return addon as NativeAddon;
  } catch (err) {
    return `${shown} does not load: ${(err as Error).message.split('\n')[0]!.replace(`${file}: `, '')}`;
  }
}
