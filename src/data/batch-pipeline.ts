import * as fs from 'node:fs';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { assembleBatch, BatchSpec } from './assemble-batch';
import type { WorkerReply, WorkerRequest } from './batch-worker';
import { openPixelReader, PixelReader } from './pixel-store';

/**
 * One assembled batch. Consume it before asking for the batch after next: without workers the pipeline assembles
 * into two buffers in turn (no allocation per step; a batch-64 64x64 input is 3 MB).
 */
export interface Batch {
  input: Float32Array;
  labels: BigInt64Array;
  count: number;
}

/**
 * Assembles training batches ahead of the trainer: with `workers` > 0, in worker threads that read the images from
 * shared memory and hand batches back without copying, keeping up to `prefetch` batches in flight; with 0, on the
 * calling thread when asked. Both give identical batches (see assembleBatch).
 */
export class BatchPipeline {
  private readonly workers: Worker[] = [];
  private readonly pending = new Map<number, { resolve: (b: Batch) => void; reject: (e: Error) => void }>();
  private nextId = 0;
  private readonly inFlight: number[] = [];
  private failure: Error | undefined;
  /** Inline mode: two batch buffers used in turn (batch k+1 is assembled before batch k has been consumed). */
  private readonly inlineBuffers: { input: Float32Array; labels: BigInt64Array }[] = [];
  private inlineTurn = 0;
  readonly spec: BatchSpec;
  /** Reads images for batches assembled on this thread. */
  private readonly reader: PixelReader;

  constructor(spec: BatchSpec, workers: number) {
    const file = path.join(__dirname, 'batch-worker.js');
    // Worker threads need the compiled worker; from TypeScript sources (tests) batches are assembled inline.
    const count = fs.existsSync(file) ? workers : 0;
    if (count < workers && __filename.endsWith('.js')) {
      process.emitWarning(`batch workers unavailable (${file} is missing): batches are assembled on the training thread`);
    }
    let source = spec.source;
    if (count > 0 && source.kind === 'memory' && !(source.pixels.buffer instanceof SharedArrayBuffer)) {
      const pixels = new Uint8Array(new SharedArrayBuffer(source.pixels.length));
      pixels.set(source.pixels);
      source = { kind: 'memory', pixels };
    }
    this.spec = { ...spec, source };
    this.reader = openPixelReader(source, spec.channels * spec.height * spec.width);
    for (let i = 0; i < count; i++) {
      const w = new Worker(file);
      w.on('message', (r: WorkerReply) => {
        const p = this.pending.get(r.id);
        this.pending.delete(r.id);
        // Idle workers must not keep the process alive (a run that ends by an error never reaches close()).
        if (--this.inFlight[i]! === 0) w.unref();
        p?.resolve({ input: r.input, labels: r.labels, count: r.labels.length });
      });
      w.on('error', (err) => this.fail(err));
      w.on('exit', (code) => {
        if (code !== 0) this.fail(new Error(`a batch worker exited with code ${code}`));
      });
      w.postMessage({ type: 'init', spec: this.spec } satisfies WorkerRequest);
      w.unref();
      this.inFlight.push(0);
      this.workers.push(w);
    }
  }

  get threads(): number {
    return this.workers.length;
  }

  private fail(err: Error): void {
    this.failure = err;
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
  }

  private request(indices: number[], epoch: number, batch: number): Promise<Batch> {
    if (this.workers.length === 0) {
      const image = this.spec.channels * this.spec.height * this.spec.width;
      const turn = this.inlineTurn++ % 2;
      let buffers = this.inlineBuffers[turn];
      if (buffers === undefined || buffers.labels.length < indices.length) {
        buffers = { input: new Float32Array(indices.length * image), labels: new BigInt64Array(indices.length) };
        this.inlineBuffers[turn] = buffers;
      }
      const input = buffers.input.subarray(0, indices.length * image);
      const labels = buffers.labels.subarray(0, indices.length);
      assembleBatch(this.spec, this.reader, indices, epoch, batch, input, labels);
      return Promise.resolve({ input, labels, count: indices.length });
    }
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      const k = id % this.workers.length;
      if (this.inFlight[k]!++ === 0) this.workers[k]!.ref();
      this.workers[k]!.postMessage({ type: 'batch', id, indices, epoch, batch } satisfies WorkerRequest);
    });
  }

  /** The batches of one epoch in `order`, from batch `start` on, assembled `prefetch` batches ahead. */
  async *epoch(order: readonly number[], batchSize: number, epoch: number, start = 0, prefetch = 4): AsyncGenerator<Batch> {
    const batches = Math.ceil(order.length / batchSize);
    const queue: Promise<Batch>[] = [];
    let next = start;
    const fill = () => {
      while (next < batches && queue.length < (this.workers.length === 0 ? 1 : prefetch)) {
        queue.push(this.request(order.slice(next * batchSize, (next + 1) * batchSize), epoch, next));
        next++;
      }
    };
    fill();
    while (queue.length > 0) {
      const batch = await queue.shift()!;
      fill();
      yield batch;
    }
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
    this.workers.length = 0;
    this.reader.close();
  }
}
