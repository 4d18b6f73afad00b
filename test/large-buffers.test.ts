/**
 * Splits of several gigabytes (CIFAR-10's 20,000 training images at 224 px are 3 GB) must hash and cache like small
 * ones: Hash.update refuses more than 2^31 - 1 bytes at once and Buffer.concat more than 4 GiB, which made the
 * transfer study's own command fail. Checked here with small chunks: pieces give exactly what one piece gives.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { writeFileAtomic } from '../src/util/atomic-write';
import { updateHash } from '../src/util/hash-bytes';

test('a hash fed in chunks equals the hash of the whole, for every chunk size and a tail', () => {
  const bytes = Uint8Array.from({ length: 1000 }, (_, i) => (i * 31) % 256);
  const whole = createHash('sha256').update(bytes).digest('hex');
  for (const chunk of [1, 7, 64, 999, 1000, 4096]) expect(updateHash(createHash('sha256'), bytes, chunk).digest('hex')).toBe(whole);
  expect(updateHash(createHash('sha256'), new Uint8Array(0)).digest('hex')).toBe(createHash('sha256').digest('hex'));
});

test('writeFileAtomic writes parts one after the other, as one file', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'deepvision-parts-'));
  try {
    const file = path.join(dir, 'cache.bin');
    writeFileAtomic(file, [Uint8Array.of(1, 2), new Uint8Array(0), Buffer.from('abc')]);
    expect([...fs.readFileSync(file)]).toEqual([1, 2, 97, 98, 99]);
    expect(fs.readdirSync(dir)).toEqual(['cache.bin']);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
