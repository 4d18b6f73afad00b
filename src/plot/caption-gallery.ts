/**
 * A gallery of captioned images: each image as the model saw it, its generated caption (bold) and a reference
 * caption (grey) underneath. An SVG of embedded PNGs and text, rasterized by sharp to a palette PNG that stays
 * small enough to commit.
 */
import sharp from 'sharp';
import { escapeXml } from './svg';
import type { Pixels } from '../portable/image-preprocessing';

export interface GalleryItem {
  image: Pixels;
  generated: string;
  reference: string;
}

export interface GalleryOptions {
  /** Panels per row (default 4). */
  columns?: number;
  /** Image size in the gallery, pixels (default 200). */
  panel?: number;
}

const LINE = 15;
const FONT = 12;

export async function renderCaptionGallery(items: readonly GalleryItem[], o: GalleryOptions = {}): Promise<Buffer> {
  if (items.length === 0) throw new Error('a gallery needs at least one image');
  const panel = o.panel ?? 200;
  const columns = Math.min(o.columns ?? 4, items.length);
  const gap = 12;
  // Bold 12-px sans-serif runs up to about 7.5 px a character (lower-case text averages less).
  const perLine = Math.floor(panel / 7.5);
  const texts = items.map((item) => ({ generated: wrap(item.generated, perLine), reference: wrap(item.reference, perLine) }));
  const textLines = Math.max(...texts.map((t) => t.generated.length + t.reference.length));
  const cellHeight = panel + 6 + textLines * LINE + gap;
  const parts: string[] = [];
  for (let i = 0; i < items.length; i++) {
    const x = gap + (i % columns) * (panel + gap);
    const y = gap + Math.floor(i / columns) * cellHeight;
    const { image } = items[i]!;
    const png = await sharp(Buffer.from(image.data as Uint8Array), { raw: { width: image.width, height: image.height, channels: image.channels as 1 | 2 | 3 | 4 } })
      .resize(panel, panel, { fit: 'cover' }).png().toBuffer();
    parts.push(`<image x="${x}" y="${y}" width="${panel}" height="${panel}" href="data:image/png;base64,${png.toString('base64')}"/>`);
    let line = 0;
    const text = (s: string, style: string) => parts.push(`<text x="${x}" y="${y + panel + 6 + (++line) * LINE - 3}" font-family="sans-serif" font-size="${FONT}" ${style}>${escapeXml(s)}</text>`);
    for (const s of texts[i]!.generated) text(s, 'font-weight="bold" fill="#111"');
    for (const s of texts[i]!.reference) text(s, 'fill="#777"');
  }
  const width = gap + columns * (panel + gap);
  const height = gap + Math.ceil(items.length / columns) * cellHeight;
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}"><rect width="100%" height="100%" fill="white"/>${parts.join('')}</svg>`;
  return sharp(Buffer.from(svg)).png({ palette: true, quality: 85, compressionLevel: 9 }).toBuffer();
}

/** Words into lines of at most `width` characters (a longer word gets a line of its own). */
function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let current = '';
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (current !== '' && current.length + 1 + word.length > width) {
      lines.push(current);
      current = word;
    } else {
      current = current === '' ? word : `${current} ${word}`;
    }
  }
  if (current !== '') lines.push(current);
  return lines.length > 0 ? lines : [''];
}
