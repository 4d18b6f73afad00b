import { Rng } from '../src/util/rng';

describe('Rng', () => {
  test('is deterministic for a seed and resumes exactly from a saved state', () => {
    const a = new Rng(42);
    const first = Array.from({ length: 5 }, () => a.nextUint32());
    expect(new Rng(42).nextUint32()).toBe(first[0]);
    const state = a.getState();
    const next = Array.from({ length: 5 }, () => a.next());
    const resumed = new Rng(state);
    expect(Array.from({ length: 5 }, () => resumed.next())).toEqual(next);
  });

  test('draws uniform values in [0, 1) and standard normals', () => {
    const rng = new Rng(1);
    const u = Array.from({ length: 100000 }, () => rng.next());
    expect(Math.min(...u)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...u)).toBeLessThan(1);
    expect(u.reduce((s, v) => s + v, 0) / u.length).toBeCloseTo(0.5, 2);
    const n = Array.from({ length: 100000 }, () => rng.normal());
    const mean = n.reduce((s, v) => s + v, 0) / n.length;
    const variance = n.reduce((s, v) => s + (v - mean) ** 2, 0) / n.length;
    expect(mean).toBeCloseTo(0, 1);
    expect(variance).toBeCloseTo(1, 1);
  });

  test('derived streams differ by purpose and shuffle is a permutation', () => {
    expect(Rng.derive(0, 'a.weight').nextUint32()).not.toBe(Rng.derive(0, 'b.weight').nextUint32());
    const items = [...Array(50).keys()];
    const shuffled = new Rng(3).shuffle([...items]);
    expect(shuffled).not.toEqual(items);
    expect([...shuffled].sort((x, y) => x - y)).toEqual(items);
  });
});
