/**
 * graphs/captioner.ts: the training graph (teacher forcing, masked loss), its gradients, and the generation entry
 * points (encoder, one decoder step) agreeing with the forward pass token by token.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import captioner from '../graphs/captioner';
import { checkGradientGraph } from '../src/runtime/gradcheck';
import { buildEntryPoint, buildModel } from '../src/model/build';
import { loadCaptionData } from '../src/data/captions/load-captions';
import { readSafetensors } from '../src/io/safetensors';
import { buildEvalGraph, buildTrainingGraph } from '../src/model/training-graph';
import { train } from '../src/train/trainer';
import { writeSmallBackbone } from './support/small-backbone';
import { encodeModel } from '../src/onnx/write';
import { searchCaptions } from '../src/portable/caption-search';
import { decoderSteps } from '../src/portable/decoder-steps';
import { Rng } from '../src/util/rng';

const config = { vocabularySize: 12, maxLength: 5, imageSize: 16, embedding: 8, hidden: 10 };
const N = 3;

function batch(seed: number) {
  const rng = new Rng(seed);
  const images = Float32Array.from({ length: N * 3 * 16 * 16 }, () => rng.normal());
  // <start>=1 w w w <end>=2 <pad>=0 ...: captions are the tokens fed, targets the tokens predicted.
  const lengths = [3, 5, 1];
  const tokens = lengths.map((len) => [1, ...Array.from({ length: len }, () => 4 + rng.int(8)), 2]);
  const captions = new BigInt64Array(N * config.maxLength);
  const targets = new BigInt64Array(N * config.maxLength);
  const mask = new Float32Array(N * config.maxLength);
  tokens.forEach((row, n) => {
    for (let t = 0; t < config.maxLength; t++) {
      captions[n * config.maxLength + t] = BigInt(row[t] ?? 0);
      targets[n * config.maxLength + t] = BigInt(row[t + 1] ?? 0);
      mask[n * config.maxLength + t] = t + 1 < row.length ? 1 : 0;
    }
  });
  return {
    input: new ort.Tensor('float32', images, [N, 3, 16, 16]),
    captions: new ort.Tensor('int64', captions, [N, config.maxLength]),
    targets: new ort.Tensor('int64', targets, [N, config.maxLength]),
    mask: new ort.Tensor('float32', mask, [N, config.maxLength]),
  };
}

describe('captioner', () => {
  test('the training graph: images and captions in, masked cross-entropy out, a gradient for every parameter', () => {
    const graph = buildTrainingGraph(captioner, { config });
    expect(graph.model.graph.inputs.slice(0, 4).map((v) => [v.name, v.shape])).toEqual([
      ['input', ['batch', 3, 16, 16]], ['captions', ['batch', 5]], ['targets', ['batch', 5]], ['mask', ['batch', 5]],
    ]);
    expect(graph.trainable).toEqual(expect.arrayContaining(['embed.weight', 'lstm.weight_ih_l0', 'lstm.weight_hh_l0', 'classifier.weight', 'encoder.project.weight']));
    expect(graph.model.graph.outputs[0]!.name).toBe('loss');
  });

  test('gradients match finite differences', async () => {
    const small = { ...config, embedding: 4, hidden: 5 };
    const graph = buildTrainingGraph(captioner, { config: small, seed: 2 });
    const feeds: Record<string, ort.Tensor> = { ...batch(1) };
    for (const [name, value] of graph.values) feeds[name] = new ort.Tensor('float32', value.typed() as Float32Array, [...value.dims]);
    const decoder = graph.trainable.filter((n) => !n.startsWith('encoder.features'));
    const report = await checkGradientGraph(encodeModel(graph.model), feeds, decoder, { sample: 4, largest: 2, seed: 4, eps: 1e-3 });
    if (!report.ok) console.log(report);
    expect(report.ok).toBe(true);
  });

  test('encoder + decoder steps give the forward pass\'s log-probabilities token by token', async () => {
    const forward = buildModel(captioner, { config, seed: 3 });
    const values = forward.values;
    const encoder = await ort.InferenceSession.create(encodeModel(buildEntryPoint(captioner, 'encoder', { config, seed: 3 })));
    const step = await ort.InferenceSession.create(encodeModel(buildEntryPoint(captioner, 'step', { config, seed: 3, values })));
    const full = await ort.InferenceSession.create(encodeModel(forward.model));
    const feeds = batch(5);
    const logits = (await full.run({ input: feeds.input, captions: feeds.captions })).logits!.data as Float32Array;
    const encoded = await encoder.run({ input: feeds.input });
    let { h, c } = encoded;
    const V = config.vocabularySize;
    for (let t = 0; t < config.maxLength; t++) {
      const token = new ort.Tensor('int64', BigInt64Array.from({ length: N }, (_, n) => (feeds.captions.data as BigInt64Array)[n * config.maxLength + t]!), [N]);
      const out = await step.run({ token, h: h!, c: c!, features: encoded.features! });
      const logProbs = out.log_probs!.data as Float32Array;
      for (let n = 0; n < N; n++) {
        const row = logits.subarray((n * config.maxLength + t) * V, (n * config.maxLength + t + 1) * V);
        const max = Math.max(...row);
        const z = Math.log(row.reduce((s, v) => s + Math.exp(v - max), 0)) + max;
        for (let v = 0; v < V; v++) expect(Math.abs(logProbs[n * V + v]! - (row[v]! - z))).toBeLessThan(1e-5);
      }
      ({ h_next: h, c_next: c } = out);
    }
    await Promise.all([encoder.release(), step.release(), full.release()]);
  });

  test('the trainer trains a captioner on shapes: the loss falls, validation reports BLEU of greedy captions, the vocabulary is saved', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'deepvision-captioner-'));
    try {
      const data = await loadCaptionData('shapes', { imageSize: 16, trainSize: 384, valSize: 64, minCount: 1, maxLength: 14, seed: 0, cacheDir: path.join(dir, 'cache') });
      const result = await train({
        definition: captioner, config: { embedding: 16, hidden: 32 }, train: data.train.images, val: data.val.images, captions: data, epochs: 3, batchSize: 32,
        optimizer: { kind: 'adam' }, learningRate: 0.01, outDir: path.join(dir, 'run'), threads: 1, seed: 1, bleuImages: 64, data: { source: 'shapes' },
      });
      const [first, last] = [result.history[0]!, result.history[2]!];
      expect(last.valLoss).toBeLessThan(first.valLoss);
      expect(last.valBleu).toHaveLength(4);
      // A quarter of the words right is far above chance over a vocabulary of ~40 words.
      expect(last.valTop1).toBeGreaterThan(0.25);
      const { metadata } = readSafetensors(result.bestCheckpoint);
      expect(metadata['deepvision.task']).toBe('captioning');
      expect(JSON.parse(metadata['deepvision.vocabulary']!).tokens.slice(0, 4)).toEqual(['<pad>', '<start>', '<end>', '<unk>']);
      expect(JSON.parse(metadata['deepvision.config']!)).toMatchObject({ vocabularySize: data.vocabulary.size, maxLength: 13 });
      const bin = path.join(__dirname, '..', 'bin', 'deepvision.js');
      const cli = (...args: string[]) => spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', timeout: 60000 });
      // deepvision caption: the run's best checkpoint captions an image with words of its vocabulary.
      const sample = path.join(__dirname, '..', 'web-demo', 'samples', 'circle.png');
      const captioned = cli('caption', path.join(dir, 'run'), sample, '--beam', '2', '--json');
      expect(captioned.stderr).toBe('');
      const printed = JSON.parse(captioned.stdout) as { caption: string; candidates: { caption: string; score: number }[] };
      expect(printed.candidates.length).toBeGreaterThan(0);
      expect(printed.caption).toBe(printed.candidates[0]!.caption);
      for (const word of printed.caption.split(' ').filter(Boolean)) expect(data.vocabulary.tokens).toContain(word);
      expect(cli('caption', dir, sample).stderr).toMatch(/^error: .* has no best\.safetensors/);
      // eval captions validation images and scores them.
      const gallery = path.join(dir, 'gallery.png');
      const evaluated = cli('eval', result.bestCheckpoint, '--val-size', '16', '--beam', '2', '--gallery', gallery, '--gallery-size', '6');
      expect(evaluated.stderr).toBe(`gallery: ${gallery}\n`);
      // Six panels of 200 px, four to a row with 12-px gaps: two rows.
      const png = fs.readFileSync(gallery);
      expect(png.readUInt32BE(16)).toBe(12 + 4 * 212);
      expect(png.readUInt32BE(20)).toBeGreaterThan(12 + 2 * 212);
      expect(cli('eval', result.bestCheckpoint, '--gallery', path.join(dir, 'g.svg')).stderr).toMatch(/^error: --gallery writes a PNG/);
      expect(evaluated.stdout).toMatch(/^captioner on shapes val \(16 images, beam 2\): BLEU-1 [\d.]+, BLEU-2 [\d.]+, BLEU-3 [\d.]+, BLEU-4 [\d.]+, CIDEr-D [\d.]+$/m);
      expect(cli('eval', result.bestCheckpoint, '--split', 'test').stderr).toMatch(/^error: shapes has no test split of its own: use --split val$/m);
      expect(cli('eval', result.bestCheckpoint, '--tta', 'hflip').stderr).toMatch(/^error: --tta hflip: test-time augmentation is for classifiers; .* is a captioner's checkpoint$/m);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('on a frozen pretrained backbone, features are computed once per image and training equals running the backbone every step', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'deepvision-captioner-frozen-'));
    try {
      const backbone = writeSmallBackbone(dir);
      const data = await loadCaptionData('shapes', { imageSize: 16, trainSize: 128, valSize: 32, minCount: 1, maxLength: 14, seed: 0, cacheDir: path.join(dir, 'cache') });
      const computed: string[] = [];
      const run = (out: string, cacheFeatures: boolean) => train({
        definition: captioner, config: { embedding: 16, hidden: 32, backbone, output: 'features', imageSize: 16 }, train: data.train.images, val: data.val.images, captions: data,
        epochs: 2, batchSize: 32, optimizer: { kind: 'adam' }, learningRate: 0.01, outDir: path.join(dir, out), threads: 1, seed: 1, bleuImages: 16,
        cacheFeatures, cacheDir: path.join(dir, 'cache'), onFeatures: (done, total, what) => done === total && computed.push(what),
      });
      const cached = await run('cached', true);
      expect(computed).toHaveLength(2);
      const direct = await run('direct', false);
      cached.history.forEach((m, i) => {
        // The feature pass runs the backbone at optimization level `all` (prepacked, channel-blocked kernels), the
        // direct run inside the training session: the same sums, rounded differently (4e-5 after two epochs).
        expect(Math.abs(m.valLoss - direct.history[i]!.valLoss)).toBeLessThan(1e-4 * Math.abs(direct.history[i]!.valLoss));
        expect(m.valBleu).toEqual(direct.history[i]!.valBleu);
      });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('deepvision train writes the generation graphs, and caption runs them without the graph file', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'deepvision-captioner-cli-'));
    try {
      const bin = path.join(__dirname, '..', 'bin', 'deepvision.js');
      const cli = (...args: string[]) => spawnSync(process.execPath, [bin, ...args], { cwd: dir, encoding: 'utf8', timeout: 120000, env: { ...process.env, DEEPVISION_CACHE: path.join(dir, 'cache') } });
      const run = path.join(dir, 'run');
      const trained = cli('train', path.join(__dirname, '..', 'graphs', 'captioner.ts'), '--data', 'shapes', '--image-size', '16', '--train-size', '128', '--val-size', '32',
        '--epochs', '1', '--set', 'embedding=8', '--set', 'hidden=16', '--max-length', '18', '--bleu-images', '8', '--out', run, '--no-progress', '--threads', '1');
      expect(trained.stderr).toBe('');
      expect(trained.stdout).toMatch(/epoch 1: train loss [\d.]+ \| val loss [\d.]+ next-word top-1 [\d.]+ % BLEU-4 [\d.]+/);
      for (const f of ['encoder_model.onnx', 'step_model.onnx']) expect(fs.existsSync(path.join(run, f))).toBe(true);
      // A graph file that would leave a mark if it ran: caption must not need it.
      const sample = path.join(__dirname, '..', 'web-demo', 'samples', 'star.png');
      const captioned = cli('caption', run, sample, '--beam', '1', '--graph', path.join(dir, 'missing.ts'));
      expect(captioned.stderr).toBe('');
      expect(captioned.stdout).toMatch(/star\.png: [a-z ]*/);
      expect(cli('caption', run, sample, '--attention-map', path.join(dir, 'a.png')).stderr).toMatch(/^error: --attention-map: .* is not an attention captioner/);
      expect(cli('caption', run, sample, '--attention-map', path.join(dir, 'a.jpg')).stderr).toMatch(/^error: --attention-map writes a PNG/);
      // A step model for another vocabulary is an error, not a wrong caption.
      fs.copyFileSync(path.join(run, 'encoder_model.onnx'), path.join(run, 'step_model.onnx'));
      expect(cli('caption', run, sample).stderr).toMatch(/^error: .*the captioner's step model has no input `token`/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('captioner, attention variant (Show, Attend and Tell)', () => {
  // The small CNN's map of a 16-px image: 2x2 = 4 regions.
  const attention = { ...config, decoder: 'attention', attentionSize: 6 };

  test('the training graph unrolls one attention step per token; gradients (the attention penalty\'s too) match finite differences', async () => {
    const small = { ...attention, embedding: 4, hidden: 5, attentionSize: 3, attentionPenalty: 1 };
    const graph = buildTrainingGraph(captioner, { config: small, seed: 2 });
    expect(graph.trainable).toEqual(expect.arrayContaining(['regions.weight', 'initH.weight', 'attention.featureProjection.weight', 'attention.score.weight', 'gate.weight', 'cell.weight_hh', 'classifier.weight']));
    const feeds: Record<string, ort.Tensor> = { ...batch(1) };
    for (const [name, value] of graph.values) feeds[name] = new ort.Tensor('float32', value.typed() as Float32Array, [...value.dims]);
    const decoder = graph.trainable.filter((n) => !n.startsWith('encoder.'));
    const report = await checkGradientGraph(encodeModel(graph.model), feeds, decoder, { sample: 3, largest: 2, seed: 4, eps: 1e-3 });
    if (!report.ok) console.log(report);
    expect(report.ok).toBe(true);
  });

  test('the attention penalty: a training graph adds λ x mean over images and regions of (1 - the weights the step model gives each region over the real steps)^2; evaluation graphs do not', async () => {
    const penalized = { ...attention, attentionPenalty: 0.5 };
    const feeds: Record<string, ort.Tensor> = { ...batch(5) };
    const plainGraph = buildTrainingGraph(captioner, { config: attention, seed: 3 });
    for (const [name, value] of plainGraph.values) feeds[name] = new ort.Tensor('float32', value.typed() as Float32Array, [...value.dims]);
    const lossOf = async (model: Parameters<typeof encodeModel>[0]) => {
      const session = await ort.InferenceSession.create(encodeModel(model));
      const wanted = Object.fromEntries(session.inputNames.map((name) => [name, feeds[name]!]));
      const loss = Number((await session.run(wanted)).loss!.data[0]);
      await session.release();
      return loss;
    };
    const plain = await lossOf(plainGraph.model);
    const withPenalty = await lossOf(buildTrainingGraph(captioner, { config: penalized, seed: 3 }).model);
    expect(await lossOf(buildEvalGraph(captioner, { config: penalized, seed: 3 }).model)).toBeCloseTo(await lossOf(buildEvalGraph(captioner, { config: attention, seed: 3 }).model), 6);

    // The same weights from the generation graphs, one step per token, summed over the steps whose token is real
    // (the encoder with the batch's statistics, as the training graph normalizes).
    const encoder = await ort.InferenceSession.create(encodeModel(buildEntryPoint(captioner, 'encoder', { config: attention, seed: 3, values: plainGraph.values, mode: 'train' })));
    const step = await ort.InferenceSession.create(encodeModel(buildEntryPoint(captioner, 'step', { config: attention, seed: 3, values: plainGraph.values })));
    const encoded = await encoder.run({ input: feeds.input! });
    const R = 4;
    const T = attention.maxLength;
    const captions = feeds.captions!.data as BigInt64Array;
    const totals = new Float64Array(N * R);
    let { h, c } = encoded;
    for (let t = 0; t < T; t++) {
      const token = new ort.Tensor('int64', BigInt64Array.from({ length: N }, (_, n) => captions[n * T + t]!), [N]);
      const out = await step.run({ token, h: h!, c: c!, features: encoded.features!, keys: encoded.keys! });
      const weights = out.attention!.data as Float32Array;
      for (let n = 0; n < N; n++) if (captions[n * T + t] !== 0n) for (let r = 0; r < R; r++) totals[n * R + r]! += weights[n * R + r]!;
      ({ h_next: h, c_next: c } = out);
    }
    const penalty = totals.reduce((sum, total) => sum + (1 - total) ** 2, 0) / (N * R);
    expect(penalty).toBeGreaterThan(0.01);
    expect(Math.abs(withPenalty - plain - 0.5 * penalty)).toBeLessThan(1e-5);
    await Promise.all([encoder.release(), step.release()]);
  });

  test('dropout before the vocabulary layer: one noise input over all the steps\' states in training graphs, none in generation graphs', () => {
    const dropped = { ...attention, dropout: 0.5 };
    const noise = buildTrainingGraph(captioner, { config: dropped }).model.graph.inputs.filter((v) => v.name.startsWith('dropout_noise'));
    expect(noise.map((v) => v.shape)).toEqual([['batch', attention.maxLength, attention.hidden]]);
    expect(buildEntryPoint(captioner, 'step', { config: dropped }).graph.inputs.map((v) => v.name)).toEqual(['token', 'h', 'c', 'features', 'keys']);
    const lstmNoise = buildTrainingGraph(captioner, { config: { ...config, dropout: 0.3 } }).model.graph.inputs.filter((v) => v.name.startsWith('dropout_noise'));
    expect(lstmNoise.map((v) => v.shape)).toEqual([['batch', config.maxLength, config.hidden]]);
  });

  test('encoder + decoder steps give the forward pass\'s log-probabilities token by token, with attention weights that sum to 1', async () => {
    const forward = buildModel(captioner, { config: attention, seed: 3 });
    const values = forward.values;
    const encoderModel = buildEntryPoint(captioner, 'encoder', { config: attention, seed: 3 });
    expect(encoderModel.graph.outputs.map((o) => o.name)).toEqual(['features', 'keys', 'h', 'c']);
    const encoder = await ort.InferenceSession.create(encodeModel(encoderModel));
    const step = await ort.InferenceSession.create(encodeModel(buildEntryPoint(captioner, 'step', { config: attention, seed: 3, values })));
    expect(step.outputNames).toEqual(['log_probs', 'h_next', 'c_next', 'attention']);
    const full = await ort.InferenceSession.create(encodeModel(forward.model));
    const feeds = batch(5);
    const logits = (await full.run({ input: feeds.input, captions: feeds.captions })).logits!.data as Float32Array;
    const encoded = await encoder.run({ input: feeds.input });
    expect(encoded.features!.dims).toEqual([N, 4, attention.embedding]);
    let { h, c } = encoded;
    const V = attention.vocabularySize;
    for (let t = 0; t < attention.maxLength; t++) {
      const token = new ort.Tensor('int64', BigInt64Array.from({ length: N }, (_, n) => (feeds.captions.data as BigInt64Array)[n * attention.maxLength + t]!), [N]);
      const out = await step.run({ token, h: h!, c: c!, features: encoded.features!, keys: encoded.keys! });
      const logProbs = out.log_probs!.data as Float32Array;
      for (let n = 0; n < N; n++) {
        const row = logits.subarray((n * attention.maxLength + t) * V, (n * attention.maxLength + t + 1) * V);
        const max = Math.max(...row);
        const z = Math.log(row.reduce((s, v) => s + Math.exp(v - max), 0)) + max;
        for (let v = 0; v < V; v++) expect(Math.abs(logProbs[n * V + v]! - (row[v]! - z))).toBeLessThan(1e-5);
        const weights = (out.attention!.data as Float32Array).subarray(n * 4, (n + 1) * 4);
        expect(Math.abs(weights.reduce((s, w) => s + w, 0) - 1)).toBeLessThan(1e-5);
      }
      ({ h_next: h, c_next: c } = out);
    }
    // Beam search through the generic step driver: beams are rows along each state's batch axis (here axis 0).
    const one = await encoder.run({ input: new ort.Tensor('float32', (feeds.input.data as Float32Array).slice(0, 3 * 16 * 16), [1, 3, 16, 16]) });
    const found = await searchCaptions(decoderSteps(step, V, ort.Tensor), one, { startId: 1, endId: 2, maxLength: 4, beam: 3 });
    expect(found.length).toBeGreaterThan(0);
    for (const caption of found) {
      expect(caption.attention).toHaveLength(Math.min(caption.tokens.length + 1, 5));
      for (const w of caption.attention!) expect(Math.abs(w.reduce((s, x) => s + x, 0) - 1)).toBeLessThan(1e-5);
    }
    await Promise.all([encoder.release(), step.release(), full.release()]);
  });

  test('deepvision train --variant attention, then caption --attention-map draws one panel per word', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'deepvision-attention-cli-'));
    try {
      const bin = path.join(__dirname, '..', 'bin', 'deepvision.js');
      const cli = (...args: string[]) => spawnSync(process.execPath, [bin, ...args], { cwd: dir, encoding: 'utf8', timeout: 120000, env: { ...process.env, DEEPVISION_CACHE: path.join(dir, 'cache') } });
      const run = path.join(dir, 'run');
      const trained = cli('train', path.join(__dirname, '..', 'graphs', 'captioner.ts'), '--variant', 'attention', '--data', 'shapes', '--image-size', '16', '--train-size', '128',
        '--val-size', '32', '--epochs', '1', '--set', 'embedding=8', '--set', 'hidden=16', '--set', 'attentionSize=8', '--max-length', '18', '--bleu-images', '8', '--out', run, '--no-progress', '--threads', '1');
      expect(trained.stderr).toBe('');
      const sample = path.join(__dirname, '..', 'web-demo', 'samples', 'star.png');
      const map = path.join(dir, 'map.png');
      const captioned = cli('caption', run, sample, '--beam', '2', '--json', '--attention-map', map);
      expect(captioned.stderr).toBe('');
      const words = (JSON.parse(captioned.stdout) as { caption: string }).caption.split(' ').filter(Boolean);
      // Panels of 160 px, five to a row, each with a 22-px label: the size tells how many words were drawn.
      const png = fs.readFileSync(map);
      const [width, height] = [png.readUInt32BE(16), png.readUInt32BE(20)];
      const panels = words.length + 1;
      expect(width).toBe(160 * Math.min(5, panels));
      expect(height).toBe(182 * Math.ceil(panels / 5));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('beam search through the step model', () => {
  // Each beam's log-probability must be what the step model gives its tokens run alone: a beam whose state rows
  // were mixed up on reordering would score differently.
  for (const [what, extra] of [['LSTM', {}], ['attention', { decoder: 'attention', attentionSize: 6 }]] as const) {
    test(`${what}: every beam-3 caption's log-probability equals its tokens re-run one at a time`, async () => {
      const c = { ...config, vocabularySize: 9, ...extra };
      const values = buildModel(captioner, { config: c, seed: 7 }).values;
      const encoder = await ort.InferenceSession.create(encodeModel(buildEntryPoint(captioner, 'encoder', { config: c, seed: 7, values })));
      const step = await ort.InferenceSession.create(encodeModel(buildEntryPoint(captioner, 'step', { config: c, seed: 7, values })));
      const rng = new Rng(3);
      const image = new ort.Tensor('float32', Float32Array.from({ length: 3 * 16 * 16 }, () => rng.normal()), [1, 3, 16, 16]);
      const start = await encoder.run({ input: image });
      const drive = decoderSteps(step, c.vocabularySize, ort.Tensor);
      const found = await searchCaptions(drive, start, { startId: 1, endId: 2, maxLength: 6, beam: 3, lengthPenalty: 0 });
      expect(found).toHaveLength(3);
      for (const caption of found) {
        let state = start;
        let sum = 0;
        for (const [i, token] of [1, ...caption.tokens].entries()) {
          const out = await drive.step([token], state);
          sum += out.logProbs[i < caption.tokens.length ? caption.tokens[i]! : 2]!;
          state = out.state;
        }
        expect(Math.abs(sum - caption.logProb)).toBeLessThan(1e-4);
      }
      await Promise.all([encoder.release(), step.release()]);
    });
  }

  test('a step model whose state has no batch axis, or whose next state matches no input, is refused', async () => {
    const { stepModelProblem } = await import('../src/portable/decoder-steps');
    const fake = (inputs: [string, (string | number)[]][], outputs: string[]) => ({
      inputNames: inputs.map(([n]) => n), outputNames: outputs,
      inputMetadata: inputs.map(([name, shape]) => ({ name, isTensor: true as const, type: 'float32' as const, shape })),
    }) as unknown as ort.InferenceSession;
    expect(stepModelProblem(fake([['token', ['batch']], ['h', [1, 4]]], ['log_probs', 'h_next']), ['h'])).toMatch(/inputs h have no dimension named 'batch'/);
    expect(stepModelProblem(fake([['token', ['batch']], ['h', ['batch', 4]]], ['log_probs', 'h_out']), ['h'])).toMatch(/returns no next state/);
    expect(stepModelProblem(fake([['token', ['batch']], ['h', ['batch', 4]]], ['log_probs', 'h_next', 'g_next']), ['h'])).toMatch(/outputs g_next match no input/);
    expect(stepModelProblem(fake([['token', ['batch']], ['h', ['batch', 4]]], ['log_probs', 'h_next']), ['h'])).toBeUndefined();
  });
});
