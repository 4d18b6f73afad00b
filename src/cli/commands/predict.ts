import { Command } from 'commander';
import { decodeImage } from '../../data/decode-image';
import { Predictor } from '../../runtime/predictor';
import { helpText } from '../help-text';

export function predictCommand(): Command {
  return new Command('predict')
    .summary('classify images with an exported model (the same numbers as the web demo)')
    .description(helpText([
      'Prints the top classes of each image for a model written by `deepvision export`, with the same preprocessing',
      'as the web demo (resize, center crop, normalize from model.json), so the page can be checked against it.',
      '',
      'Example: deepvision predict web-demo/models/cnn-shapes web-demo/samples/star.png',
    ]))
    .argument('<model-dir>', 'an exported model folder (model.json + model.onnx)')
    .argument('<images...>', 'image files (JPEG, PNG, WebP, GIF, TIFF, AVIF)')
    .option('-k, --top <k>', 'how many classes to show', '5')
    .option('--json', 'print one JSON object per image instead of a table', false)
    .action(async (dir: string, images: string[], f: { top: string; json: boolean }) => {
      const k = Number(f.top);
      const predictor = await Predictor.load(dir);
      let failed = 0;
      try {
        for (const file of images) {
          let predictions;
          try {
            predictions = await predictor.classify(await decodeImage(file), k);
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
