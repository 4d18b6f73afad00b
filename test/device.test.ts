import { chooseDevice, describeChoice } from '../src/runtime/device';

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
