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
// onnxruntime-node (1.30, Linux) reads /proc/self/cmdline when it creates its first session and matches it with a
// std::regex whose backtracking recurses once per character: a command line of about 28 KB (500 image paths) overflows
// the 8 MB main-thread stack, and the process dies with SIGSEGV before any output. So a long command line never
// reaches the process that runs onnxruntime: the child gets its arguments through a pipe (fd 3) instead, and its own
// command line stays `node deepvision.js` (ps shows the full one on the launcher). 4 KB leaves room even for a 1 MB stack.
const LONG_COMMAND_LINE = 4096;
const ARGS_FD = 3;
const args = process.argv.slice(2);
const longCommandLine = process.platform === 'linux' && Buffer.byteLength(args.join('\0')) > LONG_COMMAND_LINE;
const wantsTunables = process.platform === 'linux' && process.env.GLIBC_TUNABLES === undefined && process.env.DEEPVISION_NO_TUNABLES === undefined;
if (wantsTunables || longCommandLine) {
  // The child stays in this process group, so whatever signals the group (Ctrl-C in a terminal, a supervisor's
  // `kill -- -PGID`) reaches it directly; signals sent to this pid alone are forwarded. A Ctrl-C thus arrives twice
  // within milliseconds, and training (which saves a checkpoint on the first SIGINT and quits on the second) counts
  // SIGINTs that close together as one. If this process is killed outright (kill -9), the child notices that its
  // parent is gone and stops too: no trainer goes on writing behind a dead launcher.
  const child = spawn(process.execPath, [...process.execArgv, __filename, ...(longCommandLine ? [] : args)], {
    stdio: longCommandLine ? ['inherit', 'inherit', 'inherit', 'pipe'] : 'inherit',
    env: {
      ...process.env,
      ...(wantsTunables ? { GLIBC_TUNABLES: TUNABLES } : {}),
      ...(longCommandLine ? { DEEPVISION_ARGS_FD: String(ARGS_FD) } : {}),
      DEEPVISION_LAUNCHER_PID: String(process.pid),
    },
  });
  if (longCommandLine) {
    // A child that exits before reading its arguments closes the pipe: its own exit status says why, not EPIPE here.
    child.stdio[ARGS_FD].on('error', () => {});
    child.stdio[ARGS_FD].end(JSON.stringify(args));
  }
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(signal, () => child.kill(signal));
  child.on('exit', (code, signal) => process.exit(code ?? 128 + (require('node:os').constants.signals[signal] ?? 1)));
} else {
  const launcher = Number(process.env.DEEPVISION_LAUNCHER_PID);
  // Not for processes this one starts (a sweep's runs): their parent is this process.
  delete process.env.DEEPVISION_LAUNCHER_PID;
  if (launcher > 0) {
    // Reparented (the launcher died without passing on a signal): stop, as a kill of the launcher meant.
    setInterval(() => {
      if (process.ppid !== launcher) {
        console.error('error: the deepvision launcher process was killed; stopping');
        process.exit(137);
      }
    }, 250).unref();
  }
  let argv = process.argv;
  if (process.env.DEEPVISION_ARGS_FD !== undefined) {
    // A long command line, passed by the launcher through a pipe (see LONG_COMMAND_LINE).
    const fd = Number(process.env.DEEPVISION_ARGS_FD);
    delete process.env.DEEPVISION_ARGS_FD;
    argv = [process.argv[0], process.argv[1], ...JSON.parse(fs.readFileSync(fd, 'utf8'))];
    fs.closeSync(fd);
  }
  const entry = path.join(__dirname, '..', 'dist', 'cli', 'main.js');
  if (!fs.existsSync(entry)) {
    console.error('deepvision is not built yet: run `npm install` (or `npm run build`) in ' + path.join(__dirname, '..'));
    process.exit(1);
  }
  require(entry).main(argv);
}
