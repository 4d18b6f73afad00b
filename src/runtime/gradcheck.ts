import * as ort from 'onnxruntime-node';
import { GraphBuilder } from '../dsl/builder';
import * as F from '../dsl/functional';
import type { Tensor } from '../dsl/builder';
import type { DType } from '../ir/dtype';
import { isStatic } from '../ir/shape';
import { TensorData } from '../ir/tensor';
import { encodeModel } from '../onnx/write';
import { Rng } from '../util/rng';
import { gradients } from '../autodiff/gradients';
import { outputOf } from '../portable/session-output';

export interface GradCheckReport {
  ok: boolean;
  dtype: 'float32' | 'float64';
  /** Elements compared, and elements skipped because the loss is not smooth there (a kink within eps). */
  checked: number;
  skipped: number;
  worst: { input: string; index: number; analytic: number; numeric: number; error: number; allowed: number } | undefined;
  failures: number;
}

export interface GradCheckOptions {
  /** Step of the central difference (default 1e-6 in float64, 1e-2 in float32). */
  eps?: number;
  /** |analytic - numeric| <= atol + rtol * max(|analytic|, |numeric|) (defaults by dtype). */
  rtol?: number;
  atol?: number;
  /** Check at most this many elements of each input, chosen at random (default: all)... */
  sample?: number;
  /** ...plus this many with the largest gradient magnitude. */
  largest?: number;
  seed?: number;
}

/** Tolerances that hold for correct rules: float64 is tight; float32 allows its rounding error over eps. */
function defaults(dtype: 'float32' | 'float64') {
  return dtype === 'float64' ? { eps: 1e-6, rtol: 1e-5, atol: 1e-7 } : { eps: 1e-2, rtol: 5e-3, atol: 5e-4 };
}

/**
 * Compares the gradients deepvision emits with central finite differences computed through onnxruntime-node:
 * numeric = (L(x + eps) - L(x - eps)) / (2 eps), per element. Where the two-sided difference at eps and at eps/2
 * disagree, the loss has a kink within eps (ReLU at 0, ties in a max): such an element proves nothing either way and
 * is skipped, and the count is reported.
 */
export async function checkGradients(
  builder: GraphBuilder, loss: Tensor, wrt: readonly Tensor[], feeds: Record<string, ort.Tensor>, options: GradCheckOptions = {},
): Promise<GradCheckReport> {
  const grads = gradients(loss, wrt);
  builder.output('loss', loss);
  grads.forEach((g, i) => builder.output(`${wrt[i]!.name}_grad`, g));
  return checkGradientGraph(encodeModel(builder.toModel()), feeds, wrt.map((t) => t.name), options);
}

/**
 * The same comparison for a model that already outputs `loss` and `<name>_grad` for each name (a training graph
 * from buildTrainingGraph, say).
 */
export async function checkGradientGraph(
  model: Uint8Array, feeds: Record<string, ort.Tensor>, names: readonly string[], options: GradCheckOptions = {},
): Promise<GradCheckReport> {
  const dtype = feeds[names[0]!]?.type === 'float64' ? 'float64' : 'float32';
  const { eps, rtol, atol } = { ...defaults(dtype), ...options };
  const session = await ort.InferenceSession.create(model, { graphOptimizationLevel: 'disabled' });
  try {
    const analytic = await session.run(feeds);
    const lossAt = async (name: string, index: number, delta: number): Promise<number> => {
      const base = feeds[name]!;
      const data = (base.data as Float32Array | Float64Array).slice();
      data[index]! += delta;
      const out = await session.run({ ...feeds, [name]: new ort.Tensor(base.type as 'float32', data, base.dims) }, ['loss']);
      return Number((outputOf(out, 'loss', 'the gradient-check graph').data as Float32Array)[0]);
    };
    const rng = new Rng(options.seed ?? 0);
    const report: GradCheckReport = { ok: true, dtype, checked: 0, skipped: 0, worst: undefined, failures: 0 };
    for (const name of names) {
      const base = feeds[name];
      if (base === undefined) throw new Error(`no feed for '${name}'`);
      const computed = outputOf(analytic, `${name}_grad`, 'the gradient-check graph').data as Float32Array;
      const indices = pickElements(computed, options, rng);
      for (const index of indices) {
        const numeric = (await lossAt(name, index, eps) - await lossAt(name, index, -eps)) / (2 * eps);
        const half = (await lossAt(name, index, eps / 2) - await lossAt(name, index, -eps / 2)) / eps;
        const a = computed[index]!;
        const allowed = atol + rtol * Math.max(Math.abs(a), Math.abs(numeric));
        if (Math.abs(numeric - half) > allowed) {
          report.skipped++;
          continue;
        }
        report.checked++;
        const error = Math.abs(a - numeric);
        if (!report.worst || error / allowed > report.worst.error / report.worst.allowed) {
          report.worst = { input: name, index, analytic: a, numeric, error, allowed };
        }
        if (!(error <= allowed)) {
          report.failures++;
          report.ok = false;
        }
      }
    }
    // Skipping most elements would hide a broken rule behind "non-smooth".
    if (report.skipped > Math.max(2, 0.2 * (report.checked + report.skipped))) report.ok = false;
    return report;
  } finally {
    await session.release();
  }
}

/** All elements, or a seeded sample plus the `largest` elements by |gradient| (where a wrong rule shows most). */
function pickElements(grad: ArrayLike<number>, options: GradCheckOptions, rng: Rng): number[] {
  const count = grad.length;
  if (options.sample === undefined || options.sample + (options.largest ?? 0) >= count) return [...Array(count).keys()];
  const picked = new Set(rng.shuffle([...Array(count).keys()]).slice(0, options.sample));
  if (options.largest) {
    const order = [...Array(count).keys()].sort((i, j) => Math.abs(grad[j]!) - Math.abs(grad[i]!));
    order.slice(0, options.largest).forEach((i) => picked.add(i));
  }
  return [...picked];
}

export interface GradCheckInput {
  name: string;
  shape: number[];
  /** Values (default: seeded standard normal); integer inputs (labels, indices) are data, not differentiated. */
  values?: number[];
  dtype?: DType;
  /** Applied to each generated value, e.g. to keep them positive. */
  transform?: (v: number) => number;
}

/**
 * Checks the gradients of `forward` with respect to its floating-point inputs. A non-scalar result is reduced to
 * a scalar with a fixed random projection so that every output element matters. Runs in float64 where
 * onnxruntime's CPU kernels support it, else in float32.
 */
export async function gradCheck(
  inputs: GradCheckInput[], forward: (...xs: Tensor[]) => Tensor, options: GradCheckOptions & { dtype?: 'float32' | 'float64' } = {},
): Promise<GradCheckReport> {
  const attempt = async (dtype: 'float32' | 'float64') => {
    const b = new GraphBuilder('gradcheck', 'train');
    const rng = new Rng(options.seed ?? 1);
    const feeds: Record<string, ort.Tensor> = {};
    const tensors = inputs.map((spec) => {
      const isData = spec.dtype !== undefined && spec.dtype !== 'float32' && spec.dtype !== 'float64';
      const t = b.input(spec.name, isData ? spec.dtype! : dtype, spec.shape);
      const count = spec.shape.reduce((x, y) => x * y, 1);
      const values = spec.values ?? Array.from({ length: count }, () => (spec.transform ?? ((v: number) => v))(rng.normal()));
      feeds[spec.name] = isData
        ? new ort.Tensor(spec.dtype as 'int64', BigInt64Array.from(values.map((v) => BigInt(v))), spec.shape)
        : new ort.Tensor(dtype, dtype === 'float64' ? Float64Array.from(values) : Float32Array.from(values), spec.shape);
      return t;
    });
    const out = b.run(() => forward(...tensors));
    const loss = out.rank === 0 ? out : b.run(() => {
      if (!isStatic(out.shape)) throw new Error('gradCheck needs static output shapes');
      const n = out.shape.reduce((x, y) => x * y, 1);
      const projection = b.constant(TensorData.fromArray(out.dtype, out.shape, Array.from({ length: n }, () => rng.normal())));
      return F.reduceSum(F.mul(out, projection), undefined, false);
    });
    const wrt = tensors.filter((t) => t.dtype === dtype);
    return checkGradients(b, loss, wrt, feeds, options);
  };
  if (options.dtype !== undefined) return attempt(options.dtype);
  try {
    return await attempt('float64');
  } catch (err) {
    // onnxruntime's CPU provider has no float64 kernel for some ops (Conv, ConvTranspose, pooling): use float32.
    if (/NOT_IMPLEMENTED|Could not find an implementation|type.*double|tensor\(double\)/i.test((err as Error).message)) return attempt('float32');
    throw err;
  }
}
