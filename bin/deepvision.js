#!/usr/bin/env node
'use strict';
const path = require('node:path');
const fs = require('node:fs');
const { spawn } = require('node:child_process');

// glibc returns large freed blocks to the kernel at once, so every onnxruntime-node output buffer (gradients,
// updated weights: tens of MB per training step) is fresh memory that page-faults as it is written: measured 8x
// slower on a 37 MB output. These tunables make malloc keep and reuse freed memory. glibc reads them only at
// start-up, so the CLI re-runs itself once with them set (ignored elsewhere than glibc).
const TUNABLES = 'glibc.malloc.mmap_threshold=4294967295:glibc.malloc.trim_threshold=4294967295';
if (process.platform === 'linux' && process.env.GLIBC_TUNABLES === undefined && process.env.DEEPVISION_NO_TUNABLES === undefined) {
  // The child runs in its own process group, so a signal reaches it exactly once: forwarded from here, whether it
  // came from Ctrl-C (the terminal signals this process's group) or from `kill`. Training saves a checkpoint on the
  // first SIGINT and quits at once on the second, so a signal must not arrive twice.
  const child = spawn(process.execPath, [...process.execArgv, __filename, ...process.argv.slice(2)], {
    stdio: 'inherit',
    detached: true,
    env: { ...process.env, GLIBC_TUNABLES: TUNABLES },
  });
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(signal, () => child.kill(signal));
  child.on('exit', (code, signal) => process.exit(code ?? (signal === 'SIGINT' ? 130 : 1)));
} else {
  const entry = path.join(__dirname, '..', 'dist', 'cli', 'main.js');
  if (!fs.existsSync(entry)) {
    console.error('deepvision is not built yet: run `npm install` (or `npm run build`) in ' + path.join(__dirname, '..'));
    process.exit(1);
  }
  require(entry).main(process.argv);
}
