import type { Rng } from '../util/rng';
import type { Normalization } from './dataset';

/**
 * Training-split augmentation, applied while a batch is assembled (never to validation or test images). All
 * geometric changes compose into one inverse mapping per image, sampled bilinearly with black outside the
 * image; colour changes follow, then normalization. Every random draw comes from the Rng passed in, so a batch's
 * augmentation depends only on the seed, the epoch and the batch number.
 */
export interface AugmentConfig {
  /** Random crop after zero-padding each side by this many pixels (PyTorch's RandomCrop(size, padding)). */
  cropPadding: number;
  /** Probability of a horizontal / vertical flip. */
  hflip: number;
  vflip: number;
  /** Rotation drawn from [-rotate, rotate] degrees. */
  rotate: number;
  /** Translation drawn from [-translate, translate] times the image size, each axis. */
  translate: number;
  /** Zoom factor drawn from [scaleMin, scaleMax]. */
  scaleMin: number;
  scaleMax: number;
  /** Colour jitter: factors drawn from [1 - x, 1 + x] for brightness, contrast and saturation, applied in that order. */
  brightness: number;
  contrast: number;
  saturation: number;
  /**
   * Probability of random erasing (Zhong et al. 2017, as torchvision's RandomErasing): a rectangle of 2-33 % of
   * the image, aspect ratio 0.3-3.3 drawn log-uniformly, set to the mean colour (0 after normalization).
   */
  erase: number;
}

export const NO_AUGMENTATION: AugmentConfig = {
  cropPadding: 0, hflip: 0, vflip: 0, rotate: 0, translate: 0, scaleMin: 1, scaleMax: 1, brightness: 0, contrast: 0, saturation: 0, erase: 0,
};

/** The "standard" augmentation for small images the study uses: padded random crop and horizontal flips. */
export const STANDARD_AUGMENTATION: AugmentConfig = { ...NO_AUGMENTATION, cropPadding: 4, hflip: 0.5 };

export function isIdentityAugmentation(a: AugmentConfig): boolean {
  return a.cropPadding === 0 && a.hflip === 0 && a.vflip === 0 && a.rotate === 0 && a.translate === 0 && a.scaleMin === 1 && a.scaleMax === 1
    && a.brightness === 0 && a.contrast === 0 && a.saturation === 0 && a.erase === 0;
}

/** Problems with a configuration (empty when valid), phrased for the CLI. */
export function augmentationProblems(a: AugmentConfig): string[] {
  const p: string[] = [];
  const probability = (name: string, v: number) => (v >= 0 && v <= 1) || p.push(`${name} must be a probability in [0, 1], got ${v}`);
  if (!(Number.isInteger(a.cropPadding) && a.cropPadding >= 0)) p.push(`crop padding must be a whole number of pixels >= 0, got ${a.cropPadding}`);
  probability('hflip', a.hflip);
  probability('vflip', a.vflip);
  probability('erase', a.erase);
  if (!(a.rotate >= 0 && a.rotate <= 180)) p.push(`rotate must be in [0, 180] degrees, got ${a.rotate}`);
  if (!(a.translate >= 0 && a.translate < 1)) p.push(`translate must be a fraction in [0, 1), got ${a.translate}`);
  if (!(a.scaleMin > 0 && a.scaleMax >= a.scaleMin)) p.push(`scale must be a range min,max with 0 < min <= max, got ${a.scaleMin},${a.scaleMax}`);
  for (const k of ['brightness', 'contrast', 'saturation'] as const) if (!(a[k] >= 0 && a[k] < 1)) p.push(`${k} jitter must be in [0, 1), got ${a[k]}`);
  return p;
}

export function describeAugmentation(a: AugmentConfig): string {
  if (isIdentityAugmentation(a)) return 'none';
  const parts: string[] = [];
  if (a.cropPadding > 0) parts.push(`random crop (padding ${a.cropPadding})`);
  if (a.hflip > 0) parts.push(`hflip ${a.hflip}`);
  if (a.vflip > 0) parts.push(`vflip ${a.vflip}`);
  if (a.rotate > 0) parts.push(`rotate ±${a.rotate}°`);
  if (a.translate > 0) parts.push(`translate ±${a.translate}`);
  if (a.scaleMin !== 1 || a.scaleMax !== 1) parts.push(`scale ${a.scaleMin}-${a.scaleMax}`);
  for (const k of ['brightness', 'contrast', 'saturation'] as const) if (a[k] > 0) parts.push(`${k} ±${a[k]}`);
  if (a.erase > 0) parts.push(`random erasing ${a.erase}`);
  return parts.join(', ');
}

const mathFloor = Math.floor;
const mathCos = Math.cos;
const mathSin = Math.sin;

/**
 * Writes one augmented, normalized image (CHW float32) to `out` at `outOffset`, from the 8-bit CHW image at
 * `srcOffset` of `pixels`.
 */
export function augmentImage(
  pixels: Uint8Array, srcOffset: number, channels: number, height: number, width: number,
  a: AugmentConfig, rng: Rng, norm: Normalization, out: Float32Array, outOffset: number, scratch: Float32Array,
): void {
  const plane = height * width;
  // Random draws, in a fixed order.
  const dx = a.cropPadding > 0 ? rng.int(2 * a.cropPadding + 1) - a.cropPadding : 0;
  const dy = a.cropPadding > 0 ? rng.int(2 * a.cropPadding + 1) - a.cropPadding : 0;
  const flipX = a.hflip > 0 && rng.next() < a.hflip;
  const flipY = a.vflip > 0 && rng.next() < a.vflip;
  const angle = a.rotate > 0 ? ((rng.next() * 2 - 1) * a.rotate * Math.PI) / 180 : 0;
  const zoom = a.scaleMax > a.scaleMin ? a.scaleMin + rng.next() * (a.scaleMax - a.scaleMin) : a.scaleMin;
  const tx = a.translate > 0 ? (rng.next() * 2 - 1) * a.translate * width : 0;
  const ty = a.translate > 0 ? (rng.next() * 2 - 1) * a.translate * height : 0;
  const brightness = a.brightness > 0 ? 1 + (rng.next() * 2 - 1) * a.brightness : 1;
  const contrast = a.contrast > 0 ? 1 + (rng.next() * 2 - 1) * a.contrast : 1;
  const saturation = a.saturation > 0 ? 1 + (rng.next() * 2 - 1) * a.saturation : 1;

  // Output pixel -> source pixel: undo the affine about the centre, then the flip, then the crop offset.
  const cx = (width - 1) / 2;
  const cy = (height - 1) / 2;
  const cos = mathCos(angle) / zoom;
  const sin = mathSin(angle) / zoom;
  const integerMap = angle === 0 && zoom === 1 && tx === 0 && ty === 0;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      let sx: number;
      let sy: number;
      if (integerMap) {
        sx = x;
        sy = y;
      } else {
        const ux = x - cx - tx;
        const uy = y - cy - ty;
        sx = cos * ux + sin * uy + cx;
        sy = -sin * ux + cos * uy + cy;
      }
      if (flipX) sx = width - 1 - sx;
      if (flipY) sy = height - 1 - sy;
      sx += dx;
      sy += dy;
      const x0 = mathFloor(sx);
      const y0 = mathFloor(sy);
      const fx = sx - x0;
      const fy = sy - y0;
      const at = y * width + x;
      for (let c = 0; c < channels; c++) {
        const base = srcOffset + c * plane;
        const sample = (xx: number, yy: number) => (xx >= 0 && xx < width && yy >= 0 && yy < height ? pixels[base + yy * width + xx]! : 0);
        let v = sample(x0, y0);
        if (fx !== 0 || fy !== 0) {
          v = (1 - fy) * ((1 - fx) * v + fx * sample(x0 + 1, y0)) + fy * ((1 - fx) * sample(x0, y0 + 1) + fx * sample(x0 + 1, y0 + 1));
        }
        scratch[c * plane + at] = v;
      }
    }
  }

  if (brightness !== 1) for (let i = 0; i < channels * plane; i++) scratch[i] = clamp(scratch[i]! * brightness);
  const gray = (i: number) => (channels === 3 ? 0.299 * scratch[i]! + 0.587 * scratch[plane + i]! + 0.114 * scratch[2 * plane + i]! : scratch[i]!);
  if (contrast !== 1) {
    let mean = 0;
    for (let i = 0; i < plane; i++) mean += gray(i);
    mean /= plane;
    for (let i = 0; i < channels * plane; i++) scratch[i] = clamp(mean + (scratch[i]! - mean) * contrast);
  }
  if (saturation !== 1 && channels === 3) {
    for (let i = 0; i < plane; i++) {
      const g = gray(i);
      for (let c = 0; c < 3; c++) scratch[c * plane + i] = clamp(g + (scratch[c * plane + i]! - g) * saturation);
    }
  }
  for (let c = 0; c < channels; c++) {
    const k = 1 / (255 * norm.std[c]!);
    const o = -norm.mean[c]! / norm.std[c]!;
    for (let i = 0; i < plane; i++) out[outOffset + c * plane + i] = scratch[c * plane + i]! * k + o;
  }
}

/**
 * Random erasing of one augmented image at `outOffset` of `out` (normalized CHW), with probability `a.erase`. Its
 * draws come from their own stream, so turning it on leaves every other augmentation of a run as it was.
 */
export function eraseRandomBox(out: Float32Array, outOffset: number, channels: number, height: number, width: number, a: AugmentConfig, rng: Rng): void {
  if (!(a.erase > 0 && rng.next() < a.erase)) return;
  const box = erasedBox(height, width, rng);
  if (box === undefined) return;
  const plane = height * width;
  for (let c = 0; c < channels; c++) {
    for (let y = box.top; y < box.top + box.height; y++) {
      const row = outOffset + c * plane + y * width + box.left;
      out.fill(0, row, row + box.width);
    }
  }
}

const ERASE_AREA = [0.02, 0.33] as const;
const ERASE_LOG_RATIO = [Math.log(0.3), Math.log(3.3)] as const;

/** The rectangle random erasing blanks: up to 10 draws for one that fits, else none (torchvision's rule). */
function erasedBox(height: number, width: number, rng: Rng): { top: number; left: number; height: number; width: number } | undefined {
  for (let attempt = 0; attempt < 10; attempt++) {
    const area = height * width * (ERASE_AREA[0] + rng.next() * (ERASE_AREA[1] - ERASE_AREA[0]));
    const ratio = Math.exp(ERASE_LOG_RATIO[0] + rng.next() * (ERASE_LOG_RATIO[1] - ERASE_LOG_RATIO[0]));
    const h = Math.round(Math.sqrt(area * ratio));
    const w = Math.round(Math.sqrt(area / ratio));
    if (h >= 1 && w >= 1 && h < height && w < width) {
      return { top: rng.int(height - h + 1), left: rng.int(width - w + 1), height: h, width: w };
    }
  }
  return undefined;
}

function clamp(v: number): number {
  return v < 0 ? 0 : v > 255 ? 255 : v;
}
