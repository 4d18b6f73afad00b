/** Worker thread of the decode pool: decodes the chunks of entries it is sent into records, and sends them back. */
import { parentPort } from 'node:worker_threads';
import { DecodeChunk, decodeChunk } from './decode-entry';

parentPort!.on('message', (c: DecodeChunk) => {
  void decodeChunk(c).then((r) => parentPort!.postMessage(r, [r.records.buffer as ArrayBuffer]));
});
