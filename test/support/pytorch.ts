import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';

const PYTHON = '/usr/bin/python3';

/**
 * Runs a Python script with Debian's python3-torch (an independent reference, never a runtime dependency) and
 * returns its stdout parsed as JSON. Throws, saying how to install it, when torch is missing.
 */
export function runPyTorch(script: string, input: unknown): unknown {
  if (!fs.existsSync(PYTHON) || spawnSync(PYTHON, ['-c', 'import torch']).status !== 0) {
    throw new Error('PyTorch is not installed: run `bash scripts/install-system-deps.sh` (Debian package python3-torch)');
  }
  const r = spawnSync(PYTHON, ['-c', script], { input: JSON.stringify(input), encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
  if (r.status !== 0) throw new Error(`the PyTorch script failed:\n${r.stderr}`);
  return JSON.parse(r.stdout);
}
