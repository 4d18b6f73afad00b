#!/usr/bin/env node
// The project's postinstall: fetches onnxruntime-node's CUDA provider libraries only when asked
// (`ONNXRUNTIME_NODE_INSTALL=cuda12 npm install`). package.json's allowScripts denies onnxruntime-node's own
// install script, which would otherwise download them on every linux-x64 install (and fail offline); npm honours
// that denial, unlike the unknown .npmrc key it replaces. Without the variable, or with `skip`, nothing runs.
'use strict';
const { spawnSync } = require('node:child_process');
const path = require('node:path');

const flag = process.env.ONNXRUNTIME_NODE_INSTALL || process.env.ONNXRUNTIME_NODE_INSTALL_CUDA;
if (!flag || flag === 'skip') process.exit(0);

// The package's own installer reads the same variables, so it fetches what was asked for (e.g. cuda12). It runs as
// npm would run it: with npm_package_json naming its own package.json, else it takes itself for a checkout of
// onnxruntime and does nothing.
const dir = path.join(__dirname, '..', 'node_modules', 'onnxruntime-node');
const result = spawnSync(process.execPath, [path.join(dir, 'script', 'install.js')], {
  cwd: dir, stdio: 'inherit', env: { ...process.env, npm_package_json: path.join(dir, 'package.json') },
});
if (result.error) throw result.error;
process.exit(result.status ?? 1);
