#!/usr/bin/env node
// Writes web-demo/samples/: one generated shapes image per class (96x96 PNG, a seed the training data never uses),
// plus index.json for the page. Run after `npm run build`: node scripts/make-demo-samples.js
const fs = require('node:fs');
const path = require('node:path');
const sharp = require('sharp');
const { generateShapes } = require('../dist/data/shapes');

(async () => {
  const out = path.join(__dirname, '..', 'web-demo', 'samples');
  fs.mkdirSync(out, { recursive: true });
  const size = 96;
  const data = generateShapes({ count: 10, imageSize: size, seed: 20261125 });
  const samples = [];
  for (let i = 0; i < data.count; i++) {
    const plane = size * size;
    const rgb = Buffer.alloc(plane * 3);
    for (let p = 0; p < plane; p++) for (let c = 0; c < 3; c++) rgb[p * 3 + c] = data.pixels[i * plane * 3 + c * plane + p];
    const file = `${data.classNames[data.labels[i]]}.png`;
    await sharp(rgb, { raw: { width: size, height: size, channels: 3 } }).png({ compressionLevel: 9 }).toFile(path.join(out, file));
    samples.push({ file, caption: data.captions[i] });
  }
  fs.writeFileSync(path.join(out, 'index.json'), `${JSON.stringify({ samples }, null, 2)}\n`);
  console.log(`wrote ${samples.length} samples to ${out}`);
})();
