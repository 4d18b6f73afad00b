/** Worker thread of the batch pipeline: assembles (augments, normalizes) the batches it is asked for. */
import { parentPort } from 'node:worker_threads';
import { assembleBatch, BatchSpec } from './assemble-batch';
import { openPixelReader, PixelReader } from './pixel-store';

export type WorkerRequest =
  | { type: 'init'; spec: BatchSpec }
  | { type: 'batch'; id: number; indices: number[]; epoch: number; batch: number };

export interface WorkerReply {
  id: number;
  input: Float32Array;
  labels: BigInt64Array;
}

let spec: BatchSpec | undefined;
let reader: PixelReader | undefined;
parentPort!.on('message', (m: WorkerRequest) => {
  if (m.type === 'init') {
    spec = m.spec;
    reader = openPixelReader(spec.source, spec.channels * spec.height * spec.width);
    return;
  }
  const image = spec!.channels * spec!.height * spec!.width;
  const input = new Float32Array(m.indices.length * image);
  const labels = new BigInt64Array(m.indices.length);
  assembleBatch(spec!, reader!, m.indices, m.epoch, m.batch, input, labels);
  const reply: WorkerReply = { id: m.id, input, labels };
  parentPort!.postMessage(reply, [input.buffer, labels.buffer]);
});
