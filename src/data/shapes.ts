/**
 * The embedded default data set: procedurally drawn, seeded images of ten simple shapes at a random size,
 * position, rotation and colour on a plain, noisy, striped, checkered or gradient background, each with a correct
 * English caption ("a small red star in the top left corner on a blue background"). No download, fast to make.
 */
import { Rng } from '../util/rng';
import type { InMemoryImageDataset } from './image-dataset';
import { UserError } from '../util/user-error';

export const SHAPE_CLASSES = ['circle', 'square', 'triangle', 'star', 'cross', 'diamond', 'hexagon', 'ring', 'heart', 'crescent'] as const;

const COLORS: [string, [number, number, number]][] = [
  ['red', [220, 40, 40]], ['green', [40, 170, 60]], ['blue', [40, 80, 220]], ['yellow', [240, 220, 40]],
  ['orange', [245, 140, 30]], ['purple', [140, 50, 180]], ['white', [245, 245, 245]], ['black', [20, 20, 20]],
  ['gray', [128, 128, 128]], ['pink', [245, 150, 190]], ['cyan', [40, 210, 220]], ['brown', [120, 75, 35]],
];

/** Inside tests in the shape's own frame: radius 1, centred at the origin, unrotated. */
const polygon = (points: [number, number][]) => (u: number, v: number) => {
  let inside = false;
  for (let i = 0, j = points.length - 1; i < points.length; j = i++) {
    const [xi, yi] = points[i]!;
    const [xj, yj] = points[j]!;
    if (yi > v !== yj > v && u < ((xj - xi) * (v - yi)) / (yj - yi) + xi) inside = !inside;
  }
  return inside;
};
const regular = (n: number, radius = 1, phase = -Math.PI / 2) =>
  Array.from({ length: n }, (_, i) => [radius * Math.cos(phase + (2 * Math.PI * i) / n), radius * Math.sin(phase + (2 * Math.PI * i) / n)] as [number, number]);
const star = Array.from({ length: 10 }, (_, i) => {
  const r = i % 2 === 0 ? 1 : 0.42;
  const a = -Math.PI / 2 + (Math.PI * i) / 5;
  return [r * Math.cos(a), r * Math.sin(a)] as [number, number];
});

const INSIDE: Record<(typeof SHAPE_CLASSES)[number], (u: number, v: number) => boolean> = {
  circle: (u, v) => u * u + v * v <= 1,
  square: (u, v) => Math.abs(u) <= 0.8 && Math.abs(v) <= 0.8,
  triangle: polygon(regular(3)),
  star: polygon(star),
  cross: (u, v) => (Math.abs(u) <= 0.3 && Math.abs(v) <= 1) || (Math.abs(v) <= 0.3 && Math.abs(u) <= 1),
  // Elongated, so that no rotation of it looks like a square.
  diamond: (u, v) => Math.abs(u) / 0.55 + Math.abs(v) <= 1,
  hexagon: polygon(regular(6, 1, 0)),
  ring: (u, v) => {
    const r = u * u + v * v;
    return r <= 1 && r >= 0.3;
  },
  heart: (u, v) => {
    const x = u * 1.2;
    const y = -v * 1.2 + 0.25;
    const a = x * x + y * y - 1;
    return a * a * a - x * x * y * y * y <= 0;
  },
  crescent: (u, v) => u * u + v * v <= 1 && (u - 0.45) ** 2 + v * v > 0.64,
};

export interface ShapesOptions {
  count: number;
  imageSize: number;
  seed: number;
}

/** The size, position and colours of one image, from which both the picture and its caption follow. */
interface Scene {
  label: number;
  radius: number;
  cx: number;
  cy: number;
  angle: number;
  fg: number;
  bg: number;
  texture: 'plain' | 'noise' | 'stripes' | 'checker' | 'gradient';
}

/** The most pixel bytes the shapes generator makes at once (about 700,000 images at 32 px). */
const MAX_SHAPES_BYTES = 2 * 2 ** 30;

export function generateShapes(options: ShapesOptions): InMemoryImageDataset {
  const { count, imageSize: size, seed } = options;
  if (!Number.isInteger(size) || size < 8) throw new Error(`shapes: imageSize must be an integer >= 8, got ${size}`);
  if (!Number.isInteger(count) || count < 1) throw new Error(`shapes: count must be a positive integer, got ${count}`);
  // The images are generated into one buffer: a count that cannot fit is a clear refusal, not a RangeError.
  if (count * 3 * size * size > MAX_SHAPES_BYTES) {
    throw new UserError(`shapes: ${count.toLocaleString('en-US')} images of ${size}x${size} would take ${(count * 3 * size * size / 2 ** 30).toFixed(1)} GiB; at most ${MAX_SHAPES_BYTES / 2 ** 30} GiB are generated (lower --train-size, --val-size or --image-size)`);
  }
  const rng = new Rng(`shapes/${seed}/${size}`);
  const plane = size * size;
  const pixels = new Uint8Array(count * 3 * plane);
  const labels = new Int32Array(count);
  const captions: string[] = [];
  for (let n = 0; n < count; n++) {
    const scene = drawScene(rng, n % SHAPE_CLASSES.length);
    labels[n] = scene.label;
    captions.push(caption(scene));
    render(scene, rng, pixels.subarray(n * 3 * plane, (n + 1) * 3 * plane), size);
  }
  return { name: 'shapes', classNames: [...SHAPE_CLASSES], count, channels: 3, height: size, width: size, pixels, labels, captions };
}

function drawScene(rng: Rng, label: number): Scene {
  // Radii of 0.22-0.38 of the image: at 32x32 even a small shape spans 14 pixels, enough to tell a star from a hexagon.
  const radius = rng.uniform(0.22, 0.38);
  const margin = radius * 0.9;
  const fg = rng.int(COLORS.length);
  let bg = rng.int(COLORS.length);
  while (bg === fg || colorDistance(COLORS[fg]![1], COLORS[bg]![1]) < 120) bg = rng.int(COLORS.length);
  const textures: Scene['texture'][] = ['plain', 'noise', 'stripes', 'checker', 'gradient'];
  return {
    label, radius, cx: rng.uniform(margin, 1 - margin), cy: rng.uniform(margin, 1 - margin),
    angle: rng.uniform(0, 2 * Math.PI), fg, bg, texture: textures[rng.int(textures.length)]!,
  };
}

function colorDistance(a: readonly number[], b: readonly number[]): number {
  return Math.hypot(a[0]! - b[0]!, a[1]! - b[1]!, a[2]! - b[2]!);
}

/** "a small red star in the top left corner on a blue background". */
export function caption(scene: Scene): string {
  const size = scene.radius < 0.27 ? 'small' : scene.radius < 0.33 ? 'medium' : 'large';
  const col = scene.cx < 1 / 3 ? 0 : scene.cx < 2 / 3 ? 1 : 2;
  const row = scene.cy < 1 / 3 ? 0 : scene.cy < 2 / 3 ? 1 : 2;
  const where = [
    ['in the top left corner', 'at the top', 'in the top right corner'],
    ['on the left', 'in the center', 'on the right'],
    ['in the bottom left corner', 'at the bottom', 'in the bottom right corner'],
  ][row]![col]!;
  const bg = COLORS[scene.bg]![0];
  return `a ${size} ${COLORS[scene.fg]![0]} ${SHAPE_CLASSES[scene.label]} ${where} on ${/^[aeiou]/.test(bg) ? 'an' : 'a'} ${bg} background`;
}

function render(scene: Scene, rng: Rng, out: Uint8Array, size: number): void {
  const plane = size * size;
  const bg = COLORS[scene.bg]![1];
  const fg = COLORS[scene.fg]![1];
  const period = 2 + rng.int(4);
  const shade = rng.uniform(0.75, 0.9);
  // Background: the named colour, with a texture that never strays far from it.
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      let f = 1;
      switch (scene.texture) {
        case 'noise': f = 1 + (rng.next() - 0.5) * 0.2; break;
        case 'stripes': f = Math.floor((x + y) / period) % 2 === 0 ? 1 : shade; break;
        case 'checker': f = (Math.floor(x / period) + Math.floor(y / period)) % 2 === 0 ? 1 : shade; break;
        case 'gradient': f = 1 - ((1 - shade) * y) / size; break;
        default: break;
      }
      const i = y * size + x;
      for (let c = 0; c < 3; c++) out[c * plane + i] = clamp(bg[c]! * f + (bg[c]! < 40 ? (1 - f) * 90 : 0));
    }
  }
  // Shape: 2x2 supersampling inside its bounding box for smooth edges.
  const inside = INSIDE[SHAPE_CLASSES[scene.label]!];
  const r = scene.radius * size;
  const cos = Math.cos(scene.angle);
  const sin = Math.sin(scene.angle);
  const cx = scene.cx * size;
  const cy = scene.cy * size;
  const x0 = Math.max(0, Math.floor(cx - r));
  const x1 = Math.min(size - 1, Math.ceil(cx + r));
  const y0 = Math.max(0, Math.floor(cy - r));
  const y1 = Math.min(size - 1, Math.ceil(cy + r));
  for (let y = y0; y <= y1; y++) {
    for (let x = x0; x <= x1; x++) {
      let hits = 0;
      for (const [dx, dy] of [[0.25, 0.25], [0.75, 0.25], [0.25, 0.75], [0.75, 0.75]] as const) {
        const px = (x + dx - cx) / r;
        const py = (y + dy - cy) / r;
        if (inside(px * cos + py * sin, -px * sin + py * cos)) hits++;
      }
      if (hits === 0) continue;
      const a = hits / 4;
      const i = y * size + x;
      for (let c = 0; c < 3; c++) out[c * plane + i] = clamp(out[c * plane + i]! * (1 - a) + fg[c]! * a);
    }
  }
}

function clamp(v: number): number {
  return v < 0 ? 0 : v > 255 ? 255 : Math.round(v);
}
