import { sessionOptionsFor } from '../src/train/training-sessions';

// How training sessions hold intermediate tensors on the CPU (src/train/training-sessions.ts): no memory patterns,
// and no onnxruntime arena where glibc's malloc keeps freed memory itself (the tunables bin/deepvision.js sets).
describe('training session memory options', () => {
  const saved = process.env.GLIBC_TUNABLES;
  afterEach(() => {
    if (saved === undefined) delete process.env.GLIBC_TUNABLES;
    else process.env.GLIBC_TUNABLES = saved;
  });

  test('on the CPU with the tunables: neither memory patterns nor the arena', () => {
    process.env.GLIBC_TUNABLES = 'glibc.malloc.mmap_threshold=4294967295:glibc.malloc.trim_threshold=4294967295';
    const o = sessionOptionsFor({ executionProviders: ['cpu'] });
    expect(o).toMatchObject({ enableMemPattern: false, enableCpuMemArena: false });
  });

  test('on the CPU without them: the arena stays, so large blocks are not page-faulted in every step', () => {
    delete process.env.GLIBC_TUNABLES;
    const o = sessionOptionsFor({});
    expect(o).toMatchObject({ enableMemPattern: false, enableCpuMemArena: true });
  });

  test('with small thresholds, or only one of them, malloc returns large blocks: the arena stays', () => {
    for (const tunables of ['glibc.malloc.mmap_threshold=65536:glibc.malloc.trim_threshold=4294967295', 'glibc.malloc.mmap_threshold=4294967295']) {
      process.env.GLIBC_TUNABLES = tunables;
      expect(sessionOptionsFor({})).toMatchObject({ enableMemPattern: false, enableCpuMemArena: true });
    }
  });

  test('on WebGPU: onnxruntime chooses', () => {
    process.env.GLIBC_TUNABLES = 'glibc.malloc.mmap_threshold=4294967295';
    const o = sessionOptionsFor({ executionProviders: ['webgpu'] });
    expect(o.enableMemPattern).toBeUndefined();
    expect(o.enableCpuMemArena).toBeUndefined();
  });
});
