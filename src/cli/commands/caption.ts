import { Command } from 'commander';
import { DEFAULT_MAX_PIXELS, MAX_PIXELS_VARIABLE, maxPixelsFromEnvironment } from '../../data/decode-image';
import * as path from 'node:path';
import { renderAttentionMap } from '../../plot/attention-map';
import { CaptionModel } from '../../runtime/caption-model';
import { writeFileAtomic } from '../../util/atomic-write';
import { checkOutputs } from '../../util/output-guard';
import { UserError } from '../../util/user-error';
import { decodeImageArgument, imageArguments } from '../image-arguments';
import { graphFileForCheckpoint, loadGraphFile } from '../load-graph';
import { beamWidth, nonNegativeNumber, positiveInteger } from '../numeric-options';
import { beamProblem } from '../../portable/search-limits';

export function captionCommand(): Command {
  return new Command('caption')
    .summary('write a caption for each image with a trained captioner')
    .description('Captions images with the best checkpoint of a captioner\'s training run (deepvision train graphs/captioner.ts): '
      + 'its encoder reads the image (resized and center-cropped as in training), then its decoder writes one word at a time, '
      + 'greedily or by beam search over --beam K candidates ranked by log-probability / length^--length-penalty. '
      + `Images are read as by predict (raster formats only, at most $${MAX_PIXELS_VARIABLE} or ${DEFAULT_MAX_PIXELS.toLocaleString('en-US')} pixels).`)
    .argument('<model-dir>', 'a captioner\'s training run folder (best.safetensors)')
    .argument('<images...>', 'image files (JPEG, PNG, WebP, GIF, TIFF, AVIF)')
    .option('--beam <k>', 'beam width (1: greedy) (default: an exported captioner\'s, as the page uses it; else 3)', beamWidth)
    .option('--length-penalty <alpha>', 'rank captions by log-probability / length^alpha (0: shorter captions win) (default: an exported captioner\'s; else 0.7)', nonNegativeNumber)
    .option('--graph <file>', 'the graph file the captioner was trained from (default: the bundled graphs/<model>.ts); graph files are code: pass only files you trust')
    .option('--json', 'print one JSON object per image', false)
    .option('--attention-map <file.png>', 'attention captioners (--variant attention): draw where the model looked for each word of the best caption (several images: one file each, named <file>-<image>.png)')
    .addHelpText('after', '\nExamples:\n  deepvision caption models/captioner-shapes web-demo/samples/star.png\n  deepvision caption models/captioner-flickr8k photo.jpg --beam 5 --json')
    .action(async (dir: string, images: string[], f: { beam?: number; lengthPenalty?: number; graph?: string; json: boolean; attentionMap?: string }) => {
      if (f.attentionMap !== undefined && path.extname(f.attentionMap).toLowerCase() !== '.png') throw new UserError(`--attention-map writes a PNG: give a file name ending in .png, not ${f.attentionMap}`);
      const inputs = imageArguments(images);
      const mapFiles = f.attentionMap === undefined ? [] : attentionMapFiles(f.attentionMap, images);
      checkOutputs(mapFiles.map((file) => ({ file, option: '--attention-map' })), [
        ...inputs.map((image) => ({ file: image.path, what: 'input image' })),
        ...(f.graph === undefined ? [] : [{ file: f.graph, what: 'graph file' }]),
      ]);
      const model = await CaptionModel.fromDirectory(dir, (file, meta) => loadGraphFile(graphFileForCheckpoint(file, meta, f.graph)));
      // Checked once here, so that a beam wider than the vocabulary is one error line, not one per image.
      const beamRefused = beamProblem(f.beam ?? model.generation.beam, model.vocabulary.size);
      if (beamRefused !== undefined) {
        await model.release();
        throw new UserError(`--beam: ${beamRefused}`);
      }
      if (f.attentionMap !== undefined && !model.attends) {
        await model.release();
        throw new UserError(`--attention-map: ${dir} is not an attention captioner (train one with --variant attention)`);
      }
      let failed = 0;
      try {
        for (const [index, input] of inputs.entries()) {
          const file = input.shown;
          try {
            const image = await decodeImageArgument(input, maxPixelsFromEnvironment());
            const captions = await model.caption(image, { beam: f.beam, lengthPenalty: f.lengthPenalty });
            const best = captions[0];
            if (f.attentionMap !== undefined && best?.attention !== undefined) {
              // One label per map: each generated token as the vocabulary has it, then why the caption stopped.
              const words = best.tokens.map((id) => model.vocabulary.tokens[id] ?? '<unk>');
              words.push(best.tokens.length < model.maxLength ? '<end>' : '(cut at the longest length)');
              const out = mapFiles[index]!;
              writeFileAtomic(out, await renderAttentionMap(image, words, best.attention.slice(0, words.length), { inputSize: model.input.size }));
              if (!f.json) console.error(`attention map: ${out}`);
            }
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

/** One PNG per image: the name given for one image; else <name>-<image>.png, numbered where two images share a name. */
function attentionMapFiles(target: string, images: readonly string[]): string[] {
  if (images.length === 1) return [target];
  const stem = target.replace(/\.png$/i, '');
  const names = images.map((file) => path.parse(file).name);
  const shared = new Set(names.filter((n, i) => names.indexOf(n) !== i));
  return names.map((n, i) => (shared.has(n) ? `${stem}-${i + 1}-${n}.png` : `${stem}-${n}.png`));
}
