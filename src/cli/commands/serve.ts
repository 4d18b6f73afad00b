import * as fs from 'node:fs';
import * as path from 'node:path';
import { Command } from 'commander';
import { listModels } from '../../export/model-index';
import { demoServerOptions, startStaticServer } from '../../serve/static-server';
import { UserError } from '../errors';
import { helpText } from '../help-text';

export function serveCommand(): Command {
  return new Command('serve')
    .summary('serve the web demo on 127.0.0.1')
    .description(helpText([
      'Serves web-demo/ (and onnxruntime-web\'s scripts and wasm from node_modules, at /ort/) on 127.0.0.1 only,',
      'with the headers that let onnxruntime-web use threads. Nothing outside those folders is served, and only to',
      'requests addressed to localhost, 127.0.0.1 or [::1] (a page of another site is refused, even one whose name',
      'resolves to this machine).',
      'Put models there with `deepvision export MODEL_DIR --out web-demo/models/NAME`.',
    ]))
    .option('-p, --port <port>', 'port (0 picks a free one)', '8080')
    .option('--quiet', 'do not log requests', false)
    .action(async (f: { port: string; quiet: boolean }) => {
      const port = Number(f.port);
      if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UserError(`--port must be an integer from 0 to 65535, got '${f.port}'`);
      const options = demoServerOptions();
      if (!fs.existsSync(path.join(options.root, 'app.js'))) throw new UserError(`${options.root}/app.js is missing: run \`npm run build\` first`);
      let started;
      try {
        started = await startStaticServer({ ...options, port, log: f.quiet ? undefined : (line) => console.log(line) });
      } catch (err) {
        throw new UserError((err as Error).message);
      }
      const models = listModels(path.join(options.root, 'models')).map((m) => m.id);
      console.log(`deepvision web demo at ${started.url} (Ctrl-C to stop)`);
      console.log(models.length > 0 ? `models: ${models.join(', ')}` : 'no models yet: deepvision export models/cnn-shapes --out web-demo/models/cnn-shapes');
      await new Promise<void>((resolve) => {
        const stop = () => started.server.close(() => resolve());
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
    });
}
