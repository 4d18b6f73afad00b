import * as path from 'node:path';
import sharp from 'sharp';
import { writeFileAtomic } from '../util/atomic-write';
import type { VegaLiteSpec } from './charts';

// vega and vega-lite ship only as ES modules; a real dynamic import (which TypeScript's CommonJS output would
// otherwise turn into require) loads them from this CommonJS package.
const importModule = new Function('specifier', 'return import(specifier)') as (specifier: string) => Promise<unknown>;

interface VegaLite { compile(spec: unknown): { spec: unknown } }
interface Vega {
  parse(spec: unknown): unknown;
  View: new (runtime: unknown, options: { renderer: 'none' }) => { toSVG(scale?: number): Promise<string>; finalize(): void };
}

/** Renders a Vega-Lite spec to SVG (vega's headless renderer) and to PNG (SVG rasterized by sharp). */
async function renderChart(spec: VegaLiteSpec): Promise<{ svg: string; png: Buffer }> {
  const vl = (await importModule('vega-lite')) as VegaLite;
  const vega = (await importModule('vega')) as Vega;
  const view = new vega.View(vega.parse(vl.compile(spec).spec), { renderer: 'none' });
  const svg = await view.toSVG();
  view.finalize();
  // 1.5x the CSS size keeps text sharp while files stay well under 100 kB (palette PNG).
  const png = await sharp(Buffer.from(svg), { density: 108 }).png({ palette: true, quality: 90, compressionLevel: 9 }).toBuffer();
  return { svg, png };
}

/** Writes `<base>.svg` and `<base>.png` (atomically); returns the two paths. */
export async function writeChart(spec: VegaLiteSpec, base: string, formats: ('svg' | 'png')[] = ['svg', 'png']): Promise<string[]> {
  const { svg, png } = await renderChart(spec);
  const written: string[] = [];
  if (formats.includes('svg')) {
    writeFileAtomic(`${base}.svg`, svg);
    written.push(`${base}.svg`);
  }
  if (formats.includes('png')) {
    writeFileAtomic(`${base}.png`, png);
    written.push(`${base}.png`);
  }
  return written.map((f) => path.normalize(f));
}
