/** Running a PyTorch reference script beside a deepvision bench, under the same conditions. */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

const TUNABLES = 'glibc.malloc.mmap_threshold=4294967295:glibc.malloc.trim_threshold=4294967295';

/**
 * Runs a PyTorch timing script with Debian's python3, our malloc settings and OpenMP OpenBLAS where installed; its
 * last output line is JSON, or why it could not run.
 */
export function runPython(script: string, args: string[]): unknown | string {
  if (!fs.existsSync(script)) return `${script} not found`;
  const openmpBlas = '/usr/lib/x86_64-linux-gnu/openblas-openmp';
  // Without the malloc tunables PyTorch page-faults its large tensors as we would (the seed CNN: 7x slower).
  const env = { ...process.env, GLIBC_TUNABLES: TUNABLES, ...(fs.existsSync(openmpBlas) ? { LD_LIBRARY_PATH: openmpBlas } : {}) };
  const run = spawnSync('/usr/bin/python3', [script, ...args], { env, encoding: 'utf8' });
  if (run.status !== 0) return `${path.basename(script)} failed: ${(run.stderr || run.stdout || String(run.error)).trim().split('\n').pop()}`;
  return JSON.parse(run.stdout.trim().split('\n').pop()!) as unknown;
}
