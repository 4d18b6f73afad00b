/**
 * The largest image the pages decode: the CLI's default (DEFAULT_MAX_PIXELS in src/data/decode-image.ts, which
 * imports sharp and so cannot be bundled; test/teach.test.ts checks that the two agree). The Teach page keeps every
 * image's RGBA pixels, 4 bytes each, so this bounds what one image can hold (200 MB).
 */
export const PAGE_MAX_PIXELS = 50_000_000;

/** Why an image of width x height pixels is refused, or undefined when it is within the limit. */
export function pixelLimitProblem(name: string, width: number, height: number, maxPixels = PAGE_MAX_PIXELS): string | undefined {
  if (width * height <= maxPixels) return undefined;
  return `'${name}' has ${width}×${height} = ${(width * height).toLocaleString('en-US')} pixels, more than the ${maxPixels.toLocaleString('en-US')} `
    + 'this page decodes (as `deepvision predict` refuses it): scale it down first';
}
