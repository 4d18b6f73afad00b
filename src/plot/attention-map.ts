/**
 * Where an attention captioner looked for each word: one panel per word, the image as the model saw it (resized and
 * center-cropped) with the regions it attended to lit and the rest darkened, the word underneath. An SVG of
 * embedded PNGs and text, rasterized by sharp (as the charts are).
 */
import sharp from 'sharp';
import { escapeXml } from './svg';
import { Pixels, resizeToPlanar } from '../portable/image-preprocessing';

export interface AttentionMapOptions {
  /** The model's input size: the image is shown as the model saw it. */
  inputSize: number;
  /** Panel size in pixels (default: the input size, at least 160). */
  panelSize?: number;
  /** Panels per row (default 5). */
  columns?: number;
}

/** PNG of the panels; `weights[i]` are word i's attention weights over a square grid of regions (row-major). */
export async function renderAttentionMap(image: Pixels, words: readonly string[], weights: readonly ArrayLike<number>[], o: AttentionMapOptions): Promise<Buffer> {
  if (words.length !== weights.length) throw new Error(`${words.length} words but ${weights.length} attention maps`);
  const grid = Math.round(Math.sqrt(weights[0]?.length ?? 0));
  if (weights.some((w) => w.length !== grid * grid || grid === 0)) throw new Error('attention weights must cover a square grid of regions');
  const size = o.inputSize;
  const panel = o.panelSize ?? Math.max(160, size);
  const columns = Math.min(o.columns ?? 5, Math.max(1, words.length));
  const label = 22;
  const rows = Math.ceil(words.length / columns);

  const planar = resizeToPlanar(image, size, size);
  const interleaved = new Uint8Array(size * size * 3);
  for (let i = 0; i < size * size; i++) for (let c = 0; c < 3; c++) interleaved[i * 3 + c] = planar[c * size * size + i]!;
  const photo = await sharp(interleaved, { raw: { width: size, height: size, channels: 3 } }).resize(panel, panel, { kernel: 'nearest' }).png().toBuffer();

  const panels: string[] = [];
  for (let i = 0; i < words.length; i++) {
    const w = weights[i]!;
    let max = 0;
    for (let r = 0; r < w.length; r++) max = Math.max(max, w[r]!);
    // Darkness per region: none where the weight is the word's largest, 80 % where it is zero; smoothed over the panel.
    const shade = new Uint8Array(grid * grid * 2);
    for (let r = 0; r < grid * grid; r++) shade[r * 2 + 1] = Math.round(255 * 0.8 * (1 - (max > 0 ? w[r]! / max : 0)));
    const overlay = await sharp(shade, { raw: { width: grid, height: grid, channels: 2 } }).resize(panel, panel, { kernel: 'cubic' }).png().toBuffer();
    const x = (i % columns) * panel;
    const y = Math.floor(i / columns) * (panel + label);
    panels.push(
      `<image x="${x}" y="${y}" width="${panel}" height="${panel}" href="data:image/png;base64,${photo.toString('base64')}"/>`,
      `<image x="${x}" y="${y}" width="${panel}" height="${panel}" href="data:image/png;base64,${overlay.toString('base64')}"/>`,
      `<text x="${x + panel / 2}" y="${y + panel + label - 6}" font-family="sans-serif" font-size="15" text-anchor="middle">${escapeXml(words[i]!)}</text>`,
    );
  }
  const width = columns * panel;
  const height = rows * (panel + label);
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}"><rect width="100%" height="100%" fill="white"/>${panels.join('')}</svg>`;
  return sharp(Buffer.from(svg)).png({ palette: true, quality: 90, compressionLevel: 9 }).toBuffer();
}
