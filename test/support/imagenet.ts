import sharp from 'sharp';

/**
 * torchvision's ImageNet evaluation preprocessing: resize the shorter side to 256 (bilinear), center-crop 224,
 * scale to [0, 1] and normalize with the ImageNet mean and std; NCHW float32.
 */
export async function imagenetInput(file: string): Promise<Float32Array> {
  const meta = await sharp(file).metadata();
  const scale = 256 / Math.min(meta.width!, meta.height!);
  const w = Math.round(meta.width! * scale);
  const h = Math.round(meta.height! * scale);
  const { data } = await sharp(file)
    .removeAlpha()
    .resize(w, h, { kernel: 'linear' })
    .extract({ left: Math.floor((w - 224) / 2), top: Math.floor((h - 224) / 2), width: 224, height: 224 })
    .raw()
    .toBuffer({ resolveWithObject: true });
  const mean = [0.485, 0.456, 0.406];
  const std = [0.229, 0.224, 0.225];
  const out = new Float32Array(3 * 224 * 224);
  for (let i = 0; i < 224 * 224; i++) {
    for (let c = 0; c < 3; c++) out[c * 224 * 224 + i] = (data[i * 3 + c]! / 255 - mean[c]!) / std[c]!;
  }
  return out;
}
