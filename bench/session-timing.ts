import type * as ort from 'onnxruntime-node';

/** Median wall time of `session.run(feeds)` in ms over `runs` timed runs, after `warmups` untimed ones. */
export async function medianRunMs(session: ort.InferenceSession, feeds: Record<string, ort.Tensor>, runs: number, warmups = 3): Promise<number> {
  for (let i = 0; i < warmups; i++) await session.run(feeds);
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await session.run(feeds);
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)]!;
}
