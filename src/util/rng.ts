/**
 * A small seeded random number generator (xoshiro128**, seeded through splitmix32) whose whole state is four
 * 32-bit words, so it can be saved in a checkpoint and restored exactly.
 */
export type RngState = [number, number, number, number];

// Module-level aliases: a global lookup per call is slow where the code runs in a vm context (Jest), and these
// functions are called millions of times when parameters are initialized.
const imul = Math.imul;
const mathLog = Math.log;
const mathSqrt = Math.sqrt;
const mathSin = Math.sin;
const mathCos = Math.cos;
const mathFloor = Math.floor;
const TWO_PI = 2 * Math.PI;

export class Rng {
  // The state as four plain numbers (uint32 values): faster than a Uint32Array in every realm V8 runs us in.
  private a = 0;
  private b = 0;
  private c = 0;
  private d = 0;
  private spareNormal: number | undefined;

  constructor(seed: number | string | RngState = 0) {
    if (Array.isArray(seed)) {
      [this.a, this.b, this.c, this.d] = seed.map((w) => w >>> 0) as RngState;
      return;
    }
    let x = typeof seed === 'number' ? seed >>> 0 : hashString(seed);
    const words: number[] = [];
    for (let i = 0; i < 4; i++) {
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      words.push((z ^ (z >>> 16)) >>> 0);
    }
    [this.a, this.b, this.c, this.d] = words as RngState;
    if ((this.a | this.b | this.c | this.d) === 0) this.a = 1;
  }

  /** A generator for a named purpose, independent of how many numbers other purposes drew. */
  static derive(seed: number, purpose: string): Rng {
    return new Rng(`${seed >>> 0}/${purpose}`);
  }

  getState(): RngState {
    return [this.a, this.b, this.c, this.d];
  }

  /** A uniform unsigned 32-bit integer. */
  nextUint32(): number {
    const result = imul(rotl(imul(this.b, 5), 7), 9) >>> 0;
    const t = (this.b << 9) >>> 0;
    this.c = (this.c ^ this.a) >>> 0;
    this.d = (this.d ^ this.b) >>> 0;
    this.b = (this.b ^ this.c) >>> 0;
    this.a = (this.a ^ this.d) >>> 0;
    this.c = (this.c ^ t) >>> 0;
    this.d = rotl(this.d, 11);
    return result;
  }

  /** A uniform float in [0, 1) with 24 random bits (exact in float32). */
  next(): number {
    return (this.nextUint32() >>> 8) / 16777216;
  }

  uniform(low: number, high: number): number {
    return low + (high - low) * this.next();
  }

  /** A uniform integer in [0, n). */
  int(n: number): number {
    return mathFloor(this.next() * n);
  }

  /** A standard normal sample (Box-Muller, both values used). */
  normal(): number {
    if (this.spareNormal !== undefined) {
      const v = this.spareNormal;
      this.spareNormal = undefined;
      return v;
    }
    let u = 0;
    while (u === 0) u = this.next();
    const v = this.next();
    const r = mathSqrt(-2 * mathLog(u));
    this.spareNormal = r * mathSin(TWO_PI * v);
    return r * mathCos(TWO_PI * v);
  }

  /** Fisher-Yates shuffle in place. */
  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      [items[i], items[j]] = [items[j]!, items[i]!];
    }
    return items;
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

/** FNV-1a over the UTF-16 code units: a stable 32-bit hash for seeding. */
function hashString(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}
