import * as fs from 'node:fs';
import * as path from 'node:path';
import { Command } from 'commander';
import { UserError } from '../errors';
import { openRegularFile } from '../../util/regular-file';

/**
 * `deepvision transfer BACKBONE.onnx --data DIR`: `train` of the bundled graphs/transfer.ts with the backbone, cut
 * and trainable layers given as options; every other option is train's.
 */
export function transferCommand(train: (argv: string[]) => Promise<unknown>): Command {
  return new Command('transfer')
    .summary('train a new head on a pretrained ONNX backbone (frozen or fine-tuned)')
    .description(
      'Trains graphs/transfer.ts: the pretrained ONNX model BACKBONE (MobileNetV2, SqueezeNet, a torchvision export, '
      + 'your own; float or int8 QDQ) cut at a value, with a new linear head for the classes of --data. A frozen '
      + 'backbone runs once per image and its features are cached, so epochs take seconds; --unfreeze fine-tunes '
      + 'some or all of it, at --backbone-lr. Images are normalized with ImageNet\'s mean and std. Every option of '
      + '`deepvision train` applies (--epochs, --lr, --augment, --out, ...).')
    .argument('<backbone>', 'the pretrained ONNX model')
    .option('--cut <value>', 'the value of the backbone the head reads: `deepvision inspect BACKBONE` lists good ones', 'features')
    .option('--unfreeze <which>', 'backbone parameters that train: none, all, last:K (the last K layers with weights) or name prefixes, comma-separated', 'none')
    .option('--image-size <n>', 'input size in pixels', '224')
    .allowUnknownOption()
    .allowExcessArguments()
    .helpOption('-h, --help', 'show this help (train\'s options: deepvision train --help)')
    .addHelpText('after', '\nExamples:\n  deepvision transfer mobilenetv2-7-fp32.onnx --data photos/ --epochs 10\n  deepvision transfer mobilenetv2-7-fp32.onnx --data photos/ --unfreeze last:4 \\\n      --backbone-lr 1e-4 --lr 1e-3')
    .action(async (backbone: string, f: { cut: string; unfreeze: string; imageSize: string }, command: Command) => {
      if (!fs.existsSync(backbone)) throw new UserError(`backbone not found: ${backbone}`);
      // Checked before the data is loaded (minutes at 224 px), so that a pipe or a folder is refused at once.
      fs.closeSync(openRegularFile(backbone, { what: 'ONNX model' }).fd);
      const graph = path.join(__dirname, '..', '..', '..', 'graphs', 'transfer.ts');
      const rest = command.args.slice(1);
      await train([
        'train', graph, '--set', `backbone=${path.resolve(backbone)}`, '--set', `output=${f.cut}`, '--set', `trainable=${f.unfreeze}`,
        '--image-size', f.imageSize, ...rest,
      ]);
    });
}
