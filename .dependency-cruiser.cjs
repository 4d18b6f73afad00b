/**
 * The layers of src/, bottom to top, in the order data flows: a folder may import its own files and the folders
 * below it, never one above (type-only imports included), and no files import each other in a cycle.
 * `npm run check:layers` (part of `npm test`) runs it; test/code-checks.test.ts shows it catching a broken import.
 * A new folder gets its place in this list, or the check refuses its imports.
 */
const LAYERS = [
  'util',       // files, hashing, random numbers, errors: no knowledge of models
  'io',         // safetensors
  'ir',         // the graph in memory
  'onnx',       // ModelProto reading and writing
  'ops',        // the op table: shape rules
  'dsl',        // the builder and functional ops
  'import',     // pretrained ONNX graphs read into the builder
  'nn',         // modules, parameters, OnnxModule
  'autodiff',   // gradient rules and the gradient builder
  'passes',     // graph rewrites
  'optim',      // optimizers as graphs, schedules
  'model',      // model definitions, training graphs
  'artifacts',  // the training-artifact folder
  'portable',   // what Node and the page share: cards, preprocessing, the training step, caption search
  'data',       // data sets, decoding, the record cache, batches
  'metrics',    // BLEU, CIDEr-D, an epoch's metrics
  'checkpoint', // checkpoints, below both runtime and train
  'native',     // the Node trainer's native fast path: the fused optimizer (C++ and its loader)
  'runtime',    // sessions, providers, predictor, captioner, gradient checks
  'train',      // the trainer
  'export',     // the browser export
  'plot',       // charts
  'sweep',      // sweeps of training runs
  'serve',      // the demo's file server
  'cli',        // the command line
];

const upward = LAYERS.slice(0, -1).map((layer, i) => ({
  name: `layers: ${layer}`,
  comment: `src/${layer} may import only ${LAYERS.slice(0, i).join(', ') || 'nothing else in src'} (layers below it): see .dependency-cruiser.cjs`,
  severity: 'error',
  from: { path: `^src/${layer}/` },
  to: { path: `^src/(${LAYERS.slice(i + 1).join('|')}|index\\.ts)` },
}));

module.exports = {
  forbidden: [
    ...upward,
    {
      name: 'no-cycles',
      comment: 'files that import each other (type-only imports included) cannot be understood or tested one at a time',
      severity: 'error',
      from: { path: '^src/' },
      to: { circular: true },
    },
    {
      name: 'unknown-folder',
      comment: 'every folder of src/ has a place in the LAYERS list of .dependency-cruiser.cjs',
      severity: 'error',
      from: { path: '^src/[^/]+/', pathNot: `^src/(${LAYERS.join('|')})/` },
      to: {},
    },
    {
      name: 'library-imports-page',
      comment: 'the page sits on top of the library: src/ never imports web-demo/',
      severity: 'error',
      from: { path: '^src/' },
      to: { path: '^web-demo/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    exclude: { path: '^(dist|models|node_modules)/' },
  },
};
