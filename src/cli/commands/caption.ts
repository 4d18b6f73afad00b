import { Command } from 'commander';
import { DEFAULT_MAX_PIXELS, decodeImage, MAX_PIXELS_VARIABLE, maxPixelsFromEnvironment } from '../../data/decode-image';
import { CaptionModel } from '../../runtime/caption-model';
import { graphFileForCheckpoint, loadGraphFile } from '../load-graph';
import { nonNegativeNumber, positiveInteger } from '../numeric-options';

export function captionCommand(): Command {
  return new Command('caption')
    .summary('write a caption for each image with a trained captioner')
    .description('Captions images with the best checkpoint of a captioner\'s training run (deepvision train graphs/captioner.ts): '
      + 'its encoder reads the image (resized and center-cropped as in training), then its decoder writes one word at a time, '
      + 'greedily or by beam search over --beam K candidates ranked by log-probability / length^--length-penalty. '
      + `Images are read as by predict (raster formats only, at most $${MAX_PIXELS_VARIABLE} or ${DEFAULT_MAX_PIXELS.toLocaleString('en-US')} pixels).`)
    .argument('<model-dir>', 'a captioner\'s training run folder (best.safetensors)')
    .argument('<images...>', 'image files (JPEG, PNG, WebP, GIF, TIFF, AVIF)')
    .option('--beam <k>', 'beam width (1: greedy)', positiveInteger, 3)
    .option('--length-penalty <alpha>', 'rank captions by log-probability / length^alpha (0: shorter captions win)', nonNegativeNumber, 0.7)
    .option('--graph <file>', 'the graph file the captioner was trained from (default: the bundled graphs/<model>.ts); graph files are code: pass only files you trust')
    .option('--json', 'print one JSON object per image', false)
    .addHelpText('after', '\nExamples:\n  deepvision caption models/captioner-shapes web-demo/samples/star.png\n  deepvision caption models/captioner-flickr8k photo.jpg --beam 5 --json')
    .action(async (dir: string, images: string[], f: { beam: number; lengthPenalty: number; graph?: string; json: boolean }) => {
      const model = await CaptionModel.fromRun(dir, (file, meta) => loadGraphFile(graphFileForCheckpoint(file, meta, f.graph)));
      let failed = 0;
      try {
        for (const file of images) {
          try {
            const captions = await model.caption(await decodeImage(file, { maxPixels: maxPixelsFromEnvironment() }), { beam: f.beam, lengthPenalty: f.lengthPenalty });
            const best = captions[0];
            if (f.json) console.log(JSON.stringify({ image: file, caption: best?.text ?? '', candidates: captions.map((c) => ({ caption: c.text, logProb: c.logProb, score: c.score })) }));
            else console.log(`${file}: ${best?.text ?? '(no caption)'}`);
          } catch (err) {
            failed++;
            if (f.json) console.log(JSON.stringify({ image: file, error: (err as Error).message }));
            else console.error(`error: ${(err as Error).message}`);
          }
        }
      } finally {
        await model.release();
      }
      if (failed > 0) process.exitCode = 1;
    });
}
