import { chooseDevice, describeChoice, webgpuAdapterHint } from '../src/runtime/device';
import { NO_CUDA_PROVIDER, NO_GPU, testWith, WEBGPU_ADAPTER } from './support/skips';

// What each test needs of the machine is decided as Jest collects the file: where it is missing, the test is skipped
// with the reason in its name; in CI (no GPU, no CUDA provider, Mesa lavapipe installed) each is required.
const CUDA_MISSING = 'CUDA provider libraries not installed: set ONNXRUNTIME_NODE_INSTALL=cuda12 and reinstall (npm install) on a machine with CUDA 12';
const NO_GPU_NODE = 'no GPU device found (/dev/dri, /dev/nvidia*): WebGPU would run on a software renderer, slower than the CPU';

describe('device selection', () => {
  testWith(NO_GPU)('auto falls back to the CPU on a machine without CUDA or a GPU, saying why', async () => {
    const choice = await chooseDevice('auto');
    expect(choice).toEqual({
      device: 'cpu',
      executionProviders: ['cpu'],
      skipped: [
        { device: 'cuda', reason: CUDA_MISSING },
        // Without a GPU device node WebGPU would run on a software renderer: auto does not even try it.
        { device: 'webgpu', reason: NO_GPU_NODE },
      ],
    });
    expect(describeChoice(choice)).toBe(`Device: cpu (cuda skipped: ${CUDA_MISSING}; webgpu skipped: ${NO_GPU_NODE})`);
  });

  test('auto on any machine: the CPU is the last provider, and every device skipped says why', async () => {
    const choice = await chooseDevice('auto');
    expect(choice.executionProviders[choice.executionProviders.length - 1]).toBe('cpu');
    for (const s of choice.skipped) expect(s.reason).not.toBe('');
  });

  testWith(NO_CUDA_PROVIDER)('an explicit device that cannot run is an error that says why', async () => {
    await expect(chooseDevice('cuda')).rejects.toThrow(`device cuda is not available: ${CUDA_MISSING}`);
  });

  testWith(WEBGPU_ADAPTER)('an explicit webgpu device runs, with the CPU as fallback for ops it lacks', async () => {
    // --device webgpu is used even on a software renderer (auto skips that): the tests and benchmarks rely on it.
    expect(await chooseDevice('webgpu')).toEqual({ device: 'webgpu', executionProviders: ['webgpu', 'cpu'], skipped: [] });
  });

  test('cpu is always available', async () => {
    expect(await chooseDevice('cpu')).toEqual({ device: 'cpu', executionProviders: ['cpu'], skipped: [] });
  });
});

describe('WebGPU adapter hints', () => {
  const failure = 'the webgpu provider failed to start: ... Failed to get a WebGPU adapter: No supported adapters';
  if (process.platform === 'linux') {
    test('an NVIDIA machine without the Vulkan loader is told which packages to install', () => {
      expect(webgpuAdapterHint(failure, 'nvidia')).toContain('apt-get install libvulkan1 libglvnd0');
      expect(webgpuAdapterHint(failure, 'none')).toContain('scripts/install-system-deps.sh');
      expect(webgpuAdapterHint(failure, 'other')).toContain('mesa-vulkan-drivers');
    });
  } else {
    test('the hints name Debian packages, so other systems get none', () => {
      for (const gpu of ['nvidia', 'none', 'other'] as const) expect(webgpuAdapterHint(failure, gpu)).toBe('');
    });
  }
  test('other failures get no hint', () => {
    expect(webgpuAdapterHint('the webgpu provider failed to start: out of memory', 'nvidia')).toBe('');
  });
});
