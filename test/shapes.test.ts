import { channelStatistics, fillBatch } from '../src/data/dataset';
import { caption, generateShapes, SHAPE_CLASSES } from '../src/data/shapes';

describe('the embedded shapes data set', () => {
  const data = generateShapes({ count: 200, imageSize: 32, seed: 3 });

  test('is deterministic for a seed and differs between seeds', () => {
    const again = generateShapes({ count: 200, imageSize: 32, seed: 3 });
    expect(Buffer.from(again.pixels).equals(Buffer.from(data.pixels))).toBe(true);
    expect(again.captions).toEqual(data.captions);
    const other = generateShapes({ count: 200, imageSize: 32, seed: 4 });
    expect(Buffer.from(other.pixels).equals(Buffer.from(data.pixels))).toBe(false);
  });

  test('has ten balanced classes and a caption naming each image\'s shape', () => {
    expect(data.classNames).toEqual([...SHAPE_CLASSES]);
    const counts = new Array(10).fill(0);
    data.labels.forEach((l) => counts[l]++);
    expect(counts).toEqual(new Array(10).fill(20));
    data.captions!.forEach((c, i) => {
      expect(c).toMatch(/^a (small|medium|large) \w+ \w+ (in the|at the|on the) .+ on an? \w+ background$/);
      expect(c.split(' ')[3]).toBe(SHAPE_CLASSES[data.labels[i]!]);
    });
  });

  test('captions describe size, colour and position', () => {
    const scene = { label: 3, radius: 0.24, cx: 0.2, cy: 0.2, angle: 0, fg: 0, bg: 2, texture: 'plain' as const };
    expect(caption(scene)).toBe('a small red star in the top left corner on a blue background');
    expect(caption({ ...scene, label: 0, radius: 0.35, cx: 0.5, cy: 0.8, fg: 6, bg: 4 })).toBe('a large white circle at the bottom on an orange background');
  });

  test('draws the foreground colour inside the shape and images are not blank', () => {
    const plane = 32 * 32;
    for (let n = 0; n < 20; n++) {
      const img = data.pixels.subarray(n * 3 * plane, (n + 1) * 3 * plane);
      const distinct = new Set<number>();
      for (let i = 0; i < plane; i++) distinct.add((img[i]! << 16) | (img[plane + i]! << 8) | img[2 * plane + i]!);
      expect(distinct.size).toBeGreaterThan(2);
    }
  });

  test('batches are normalized per channel', () => {
    const norm = channelStatistics(data);
    const out = new Float32Array(200 * 3 * 32 * 32);
    const labels = new BigInt64Array(200);
    fillBatch(data, [...Array(200).keys()], norm, out, labels);
    const plane = 32 * 32;
    for (let c = 0; c < 3; c++) {
      let s = 0;
      let q = 0;
      for (let n = 0; n < 200; n++) for (let i = 0; i < plane; i++) {
        const v = out[(n * 3 + c) * plane + i]!;
        s += v;
        q += v * v;
      }
      const mean = s / (200 * plane);
      expect(mean).toBeCloseTo(0, 4);
      expect(q / (200 * plane) - mean * mean).toBeCloseTo(1, 3);
    }
    expect(Number(labels[7])).toBe(data.labels[7]);
  });
});
