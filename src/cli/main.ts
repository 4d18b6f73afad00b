import { Command } from 'commander';
import { buildCommand } from './commands/build';
import { captionCommand } from './commands/caption';
import { evalCommand } from './commands/eval';
import { exportCommand } from './commands/export';
import { exportTeachCommand } from './commands/export-teach';
import { inspectCommand } from './commands/inspect';
import { plotCommand } from './commands/plot';
import { predictCommand } from './commands/predict';
import { serveCommand } from './commands/serve';
import { sweepCommand } from './commands/sweep';
import { trainCommand } from './commands/train';
import { transferCommand } from './commands/transfer';
import { isUserFacing } from './errors';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const { version } = require('../../package.json') as { version: string };

export function program(): Command {
  return new Command('deepvision')
    .description('Author image models as ONNX graphs in TypeScript, train them with ONNX Runtime, deploy them to the browser.')
    .version(version)
    .showHelpAfterError('(run with --help for usage)')
    .addCommand(buildCommand())
    .addCommand(inspectCommand())
    .addCommand(trainCommand())
    .addCommand(transferCommand((argv) => program().parseAsync(argv, { from: 'user' })))
    .addCommand(evalCommand())
    .addCommand(exportCommand())
    .addCommand(exportTeachCommand())
    .addCommand(predictCommand())
    .addCommand(captionCommand())
    .addCommand(plotCommand())
    .addCommand(sweepCommand())
    .addCommand(serveCommand());
}

/** Runs the CLI; user errors print one line and exit 1, bugs print their stack and exit 2. */
export async function main(argv: string[]): Promise<void> {
  try {
    await program().parseAsync(argv);
  } catch (err) {
    if (isUserFacing(err)) {
      console.error(`error: ${err.message}`);
      process.exitCode = 1;
    } else {
      console.error('deepvision failed unexpectedly (please report this):');
      console.error(err);
      process.exitCode = 2;
    }
  }
}
