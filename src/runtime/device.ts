import * as fs from 'node:fs';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { GraphBuilder } from '../dsl/builder';
import * as F from '../dsl/functional';
import { encodeModel } from '../onnx/write';

export type DeviceRequest = 'auto' | 'cpu' | 'cuda' | 'webgpu';
type Device = Exclude<DeviceRequest, 'auto'>;

export interface DeviceChoice {
  device: Device;
  executionProviders: string[];
  /** Devices tried before the chosen one, and why each was skipped. */
  skipped: { device: Device; reason: string }[];
}

/** Where onnxruntime-node keeps its native libraries (the CUDA provider must be installed beside them). */
function nativeDir(): string {
  const pkg = path.dirname(require.resolve('onnxruntime-node/package.json'));
  return path.join(pkg, 'bin', 'napi-v6', process.platform, process.arch);
}

/** Why CUDA cannot be used here, or undefined when it can. */
async function cudaUnavailable(): Promise<string | undefined> {
  if (!fs.existsSync(path.join(nativeDir(), process.platform === 'win32' ? 'onnxruntime_providers_cuda.dll' : 'libonnxruntime_providers_cuda.so'))) {
    return 'CUDA provider libraries not installed: set ONNXRUNTIME_NODE_INSTALL=cuda12 and reinstall (npm install) on a machine with CUDA 12';
  }
  return probe('cuda');
}

/**
 * Why WebGPU should not be used automatically, or undefined when it can. Without a GPU device node, ORT's WebGPU
 * provider can still run on a software Vulkan driver (lavapipe), which is far slower than the CPU provider:
 * `auto` skips it, `--device webgpu` still uses it (tests do).
 */
async function webgpuUnavailable(forAuto: boolean): Promise<string | undefined> {
  const gpu = process.platform !== 'linux' ? 'other' : fs.readdirSync('/dev').some((d) => d.startsWith('nvidia')) ? 'nvidia' : fs.existsSync('/dev/dri') ? 'other' : 'none';
  if (forAuto && gpu === 'none') {
    return 'no GPU device found (/dev/dri, /dev/nvidia*): WebGPU would run on a software renderer, slower than the CPU';
  }
  const failure = await probe('webgpu');
  return failure === undefined ? undefined : failure + webgpuAdapterHint(failure, gpu);
}

/**
 * What to install when ORT's WebGPU provider (Dawn over Vulkan on Linux) finds no adapter. Seen on an NVIDIA
 * server image with the driver but no Vulkan loader: NVIDIA's Vulkan driver is reached through the loader
 * (libvulkan1) and itself needs GLVND's dispatch library (libglvnd0); without it Dawn reports "No supported adapters".
 */
export function webgpuAdapterHint(failure: string, gpu: 'nvidia' | 'other' | 'none'): string {
  if (process.platform !== 'linux' || !/adapter/i.test(failure)) return '';
  if (gpu === 'nvidia') return ' (NVIDIA GPU found: its Vulkan driver needs the Vulkan loader and GLVND, e.g. apt-get install libvulkan1 libglvnd0)';
  if (gpu === 'other') return ' (install the Vulkan loader and your GPU\'s Vulkan driver, e.g. apt-get install libvulkan1 mesa-vulkan-drivers)';
  return ' (no GPU: Mesa\'s software Vulkan driver runs it, see scripts/install-system-deps.sh)';
}

/** Creates and runs a one-node session on a provider; returns the failure, if any. */
async function probe(provider: string): Promise<string | undefined> {
  const b = new GraphBuilder('probe');
  const x = b.input('x', 'float32', [2]);
  b.output('y', b.run(() => F.add(x, 1)));
  try {
    const session = await ort.InferenceSession.create(encodeModel(b.toModel()), { executionProviders: [provider], logSeverityLevel: 3 });
    await session.run({ x: new ort.Tensor('float32', Float32Array.from([1, 2]), [2]) });
    await session.release();
    return undefined;
  } catch (err) {
    return `the ${provider} provider failed to start: ${(err as Error).message.split('\n')[0]}`;
  }
}

/**
 * Picks the execution provider: `auto` tries CUDA, then WebGPU, then the CPU, and reports why the others were
 * skipped; an explicit device that cannot run is an error that says why.
 */
export async function chooseDevice(request: DeviceRequest): Promise<DeviceChoice> {
  const skipped: DeviceChoice['skipped'] = [];
  const order: Device[] = request === 'auto' ? ['cuda', 'webgpu', 'cpu'] : [request];
  for (const device of order) {
    const reason = device === 'cuda' ? await cudaUnavailable() : device === 'webgpu' ? await webgpuUnavailable(request === 'auto') : undefined;
    if (reason === undefined) return { device, executionProviders: device === 'cpu' ? ['cpu'] : [device, 'cpu'], skipped };
    if (request !== 'auto') throw new Error(`device ${device} is not available: ${reason}`);
    skipped.push({ device, reason });
  }
  throw new Error('no execution provider is available');
}

export function describeChoice(choice: DeviceChoice): string {
  const skipped = choice.skipped.map((s) => `${s.device} skipped: ${s.reason}`);
  return `Device: ${choice.device}${skipped.length ? ` (${skipped.join('; ')})` : ''}`;
}
