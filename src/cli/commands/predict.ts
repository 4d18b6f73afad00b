import { Command } from 'commander';
import { DEFAULT_MAX_PIXELS, MAX_PIXELS_VARIABLE, maxPixelsFromEnvironment } from '../../data/decode-image';
import { Predictor } from '../../runtime/predictor';
import { helpText } from '../help-text';
import { decodeImageArgument, imageArguments } from '../image-arguments';
import { positiveInteger } from '../numeric-options';

export function predictCommand(): Command {
  return new Command('predict')
    .summary('classify images with an exported model (the same numbers as the web demo)')
    .description(helpText([
      'Prints the top classes of each image for a model written by `deepvision export`, with the same preprocessing',
      'as the web demo (resize, center crop, normalize from model.json), so the page can be checked against it.',
      '',
      `Only raster images are read (JPEG, PNG, WebP, GIF, TIFF, AVIF; not SVG or PDF), and an image with more than`,
      `--max-pixels pixels is refused from its header, before decoding. The limit defaults to the environment variable`,
      `${MAX_PIXELS_VARIABLE}, else ${DEFAULT_MAX_PIXELS.toLocaleString('en-US')}; training reads the same variable.`,
      '',
      'Example: deepvision predict web-demo/models/cnn-shapes web-demo/samples/star.png',
    ]))
    .argument('<model-dir>', 'an exported model folder (model.json + model.onnx)')
    .argument('<images...>', 'image files (JPEG, PNG, WebP, GIF, TIFF, AVIF)')
    .option('-k, --top <k>', 'how many classes to show', positiveInteger, 5)
    .option('--max-pixels <n>', `refuse images with more pixels than this (default: $${MAX_PIXELS_VARIABLE}, else ${DEFAULT_MAX_PIXELS})`, positiveInteger)
    .option('--json', 'print one JSON object per image instead of a table', false)
    .action(async (dir: string, images: string[], f: { top: number; maxPixels?: number; json: boolean }) => {
      const maxPixels = f.maxPixels ?? maxPixelsFromEnvironment();
      const predictor = await Predictor.load(dir);
      let failed = 0;
      try {
        for (const image of imageArguments(images)) {
          const file = image.shown;
          let predictions;
          try {
            predictions = await predictor.classify(await decodeImageArgument(image, maxPixels), f.top);
          } catch (err) {
            failed++;
            if (f.json) console.log(JSON.stringify({ image: file, error: (err as Error).message }));
            else console.error(`error: ${(err as Error).message}`);
            continue;
          }
          if (f.json) {
            console.log(JSON.stringify({ image: file, predictions }));
            continue;
          }
          console.log(file);
          const width = Math.max(...predictions.map((p) => p.label.length));
          for (const p of predictions) {
            const bar = '█'.repeat(Math.round(p.probability * 30));
            console.log(`  ${p.label.padEnd(width)}  ${(100 * p.probability).toFixed(2).padStart(6)} %  ${bar}`);
          }
        }
      } finally {
        await predictor.release();
      }
      if (failed > 0) process.exitCode = 1;
    });
}
