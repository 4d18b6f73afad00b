import * as path from 'node:path';
import { Command, Option } from 'commander';
import { buildModel, BuiltModel } from '../../model/build';
import { formatSummary } from '../../model/summary';
import { writeModelFile } from '../../onnx/write';
import { UserError } from '../errors';
import { collectAssignments, configFromFlags } from '../config-flags';
import { loadGraphFile } from '../load-graph';
import { writeTrainingArtifacts } from '../../artifacts/write-artifacts';
import { checkOutputs } from '../../util/output-guard';
import type { OptimizerConfig } from '../../optim/config';
import { momentum, nonNegativeInteger, nonNegativeNumber } from '../numeric-options';
import { smokeRun } from '../smoke-run';

interface BuildFlags {
  out?: string;
  train?: boolean;
  optimizer: 'sgd' | 'adam' | 'adamw';
  momentum: number;
  weightDecay: number;
  variant?: string;
  set: string[];
  seed: number;
  mode: 'eval' | 'train';
  check?: boolean;
  quiet?: boolean;
}

export function buildCommand(): Command {
  return new Command('build')
    .summary('build a model from a graph file and write it as ONNX')
    .description(
      'Loads a model definition (a TypeScript graph file such as graphs/cnn.ts, or your own anywhere on disk), '
      + 'builds its ONNX graph with shape checking, initializes the parameters from a seed, prints a summary '
      + 'table (layers, output shapes, parameter counts) and writes the model.')
    .argument('<graph>', 'graph file (.ts or .js) whose default export is defineModel({...})')
    .option('-o, --out <file>', 'where to write the ONNX model (default: models/<name>[-<variant>].onnx)')
    .option('-v, --variant <name>', 'a named set of config changes the graph file defines (e.g. dropout, cifar10)')
    .option('-s, --set <key=value>', 'change one config value, e.g. --set numClasses=10 (repeatable)', collectAssignments, [])
    .option('--seed <n>', 'seed of the parameter initialization', nonNegativeInteger, 0)
    .addOption(new Option('--mode <mode>', 'eval: inference graph; train: dropout active, batch-norm batch statistics').choices(['eval', 'train']).default('eval'))
    .option('--check', 'load the written model in onnxruntime-node and run one random batch')
    .option('--train', 'write training artifacts into the --out folder: training_model.onnx, eval_model.onnx, optimizer_model.onnx, inference_model.onnx, checkpoint.safetensors (see README)')
    .addOption(new Option('--optimizer <name>', 'with --train: the optimizer graph').choices(['sgd', 'adam', 'adamw']).default('adam'))
    .option('--momentum <m>', 'with --train --optimizer sgd: momentum, in [0, 1)', momentum, 0.9)
    .option('--weight-decay <wd>', 'with --train: weight decay', nonNegativeNumber, 0)
    .option('-q, --quiet', 'do not print the summary table')
    .addHelpText('after', '\nExamples:\n  deepvision build graphs/cnn.ts\n  deepvision build graphs/cnn.ts --variant cifar10 --out models/cnn-cifar10.onnx\n  deepvision build ./my-net.ts --set numClasses=10 --set imageSize=32 --check')
    .action(async (graphFile: string, flags: BuildFlags) => {
      // Before the graph file runs, where --out names the output; a default output is checked once it is known.
      if (flags.out !== undefined) checkBuildOutput(graphFile, flags.out, flags.train);
      const definition = loadGraphFile(graphFile);
      const overrides = configFromFlags(definition, flags.set);
      const seed = flags.seed;
      if (flags.train) {
        const outDir = flags.out ?? path.join('models', definition.name);
        checkBuildOutput(graphFile, outDir, true);
        const weightDecay = flags.weightDecay;
        const optimizer: OptimizerConfig = flags.optimizer === 'sgd' ? { kind: 'sgd', momentum: flags.momentum, weightDecay } : { kind: flags.optimizer, weightDecay };
        let sizes: Record<string, number>;
        try {
          sizes = writeTrainingArtifacts(definition, outDir, { variant: flags.variant, config: overrides, seed, optimizer });
        } catch (err) {
          const e = err as Error;
          if (e.name === 'GraphBuildError') throw err;
          throw new UserError(`cannot build training artifacts for ${graphFile}: ${e.message}`);
        }
        console.log(`Wrote training artifacts to ${outDir}:`);
        for (const [name, bytes] of Object.entries(sizes)) console.log(`  ${name.padEnd(24)}${(bytes / 1e6).toFixed(2).padStart(9)} MB`);
        return;
      }
      let built: BuiltModel;
      try {
        built = buildModel(definition, { variant: flags.variant, config: overrides, mode: flags.mode, seed });
      } catch (err) {
        const e = err as Error;
        if (e.name === 'GraphBuildError') throw err;
        throw new UserError(`cannot build ${graphFile}: ${e.message}`);
      }
      const out = flags.out ?? path.join('models', `${definition.name}${flags.variant ? `-${flags.variant}` : ''}.onnx`);
      checkBuildOutput(graphFile, out, false);
      if (!flags.quiet) console.log(formatSummary(built));
      const bytes = writeModelFile(built.model, out);
      console.log(`Wrote ${out} (${(bytes / 1e6).toFixed(2)} MB, ${built.mode} graph, config ${JSON.stringify(built.config)})`);
      if (flags.check) console.log(await smokeRun(out));
    });
}

/** The files --train writes into its folder (writeTrainingArtifacts). */
const TRAINING_ARTIFACTS = ['training_model.onnx', 'eval_model.onnx', 'optimizer_model.onnx', 'inference_model.onnx', 'checkpoint.safetensors'];

/** The model file, or with --train the artifacts in the --out folder, must not be the graph file. */
function checkBuildOutput(graphFile: string, out: string, train: boolean | undefined): void {
  const files = train ? TRAINING_ARTIFACTS.map((name) => path.join(out, name)) : [out];
  checkOutputs(files.map((file) => ({ file, option: '--out' })), [{ file: graphFile, what: 'graph file' }]);
}
