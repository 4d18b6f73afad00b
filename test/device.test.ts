import { chooseDevice, describeChoice, webgpuAdapterHint } from '../src/runtime/device';

describe('device selection', () => {
  test('auto falls back to the CPU on a machine without CUDA, saying why', async () => {
    const choice = await chooseDevice('auto');
    // CI machines have no GPU; on a machine with one, this test documents the order instead.
    if (choice.device === 'cpu') {
      expect(choice.skipped[0]).toEqual({
        device: 'cuda',
        reason: 'CUDA provider libraries not installed: set ONNXRUNTIME_NODE_INSTALL=cuda12 and reinstall (npm install) on a machine with CUDA 12',
      });
      expect(choice.skipped[1]!.device).toBe('webgpu');
      expect(describeChoice(choice)).toMatch(/^Device: cpu \(cuda skipped: CUDA provider libraries not installed: .*; webgpu skipped: .+\)$/);
    }
    expect(choice.executionProviders[choice.executionProviders.length - 1]).toBe('cpu');
  });

  test('an explicit device that cannot run is an error that says why', async () => {
    if ((await chooseDevice('auto')).device === 'cuda') return;
    await expect(chooseDevice('cuda')).rejects.toThrow('device cuda is not available: CUDA provider libraries not installed');
  });

  test('cpu is always available', async () => {
    expect(await chooseDevice('cpu')).toEqual({ device: 'cpu', executionProviders: ['cpu'], skipped: [] });
  });
});

describe('WebGPU adapter hints', () => {
  const failure = 'the webgpu provider failed to start: ... Failed to get a WebGPU adapter: No supported adapters';
  const linux = process.platform === 'linux' ? test : test.skip;
  linux('an NVIDIA machine without the Vulkan loader is told which packages to install', () => {
    expect(webgpuAdapterHint(failure, 'nvidia')).toContain('apt-get install libvulkan1 libglvnd0');
    expect(webgpuAdapterHint(failure, 'none')).toContain('scripts/install-system-deps.sh');
    expect(webgpuAdapterHint(failure, 'other')).toContain('mesa-vulkan-drivers');
  });
  test('other failures get no hint', () => {
    expect(webgpuAdapterHint('the webgpu provider failed to start: out of memory', 'nvidia')).toBe('');
  });
});
