#!/usr/bin/env node
// Builds the Node CPU trainer's native fast path (src/native/*.cc) into build/deepvision-native.node, with the C++
// compiler this machine has and the Node-API headers from the node-api-headers package: no download, no node-gyp.
// It never fails the install: where there is no compiler or the build fails, it says so in one line and training
// uses the portable ONNX optimizer graph (src/native/native-addon.ts prints the same notice when a run starts).
//
//   node scripts/build-native.mjs              the optimized build
//   node scripts/build-native.mjs --sanitize   an AddressSanitizer build (build/deepvision-native-asan.node) for
//                                              the test lane in .ci/run
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');
const sanitize = process.argv.includes('--sanitize');
const output = path.join(root, 'build', sanitize ? 'deepvision-native-asan.node' : 'deepvision-native.node');
const sources = fs.readdirSync(path.join(root, 'src', 'native')).filter((f) => f.endsWith('.cc')).map((f) => path.join(root, 'src', 'native', f));

function skip(why) {
  console.log(`note: the native training fast path was not built (${why}); training will use the portable ONNX optimizer`);
  process.exit(sanitize ? 1 : 0);
}

if (process.env.DEEPVISION_NATIVE === 'off') skip('DEEPVISION_NATIVE=off');
let headers;
try {
  headers = path.dirname(createRequire(import.meta.url).resolve('node-api-headers/include/node_api.h'));
} catch {
  skip('the node-api-headers package is missing');
}
const compiler = process.env.CXX || 'c++';
// -O3 vectorizes the update loops for the baseline instruction set, so the binary runs on any x86-64 or arm64
// machine it is copied to; -ffp-contract=off keeps each multiply and add rounded as the ONNX graph rounds them.
const flags = [
  '-std=c++17', '-shared', '-fPIC', '-pthread', '-fvisibility=hidden', '-ffp-contract=off', '-Wall', '-Wextra',
  `-I${headers}`, '-DNAPI_VERSION=8', '-DNODE_GYP_MODULE_NAME=deepvision_native',
  ...(sanitize ? ['-O1', '-g', '-fsanitize=address', '-fno-omit-frame-pointer'] : ['-O3']),
  ...(process.platform === 'darwin' ? ['-undefined', 'dynamic_lookup'] : []),
];
fs.mkdirSync(path.dirname(output), { recursive: true });
const temporary = `${output}.${process.pid}.tmp`;
const started = Date.now();
const result = spawnSync(compiler, [...flags, ...sources, '-o', temporary], { encoding: 'utf8' });
if (result.error) skip(`no C++ compiler: ${compiler} ${result.error.code === 'ENOENT' ? 'not found' : result.error.message}`);
if (result.status !== 0) {
  fs.rmSync(temporary, { force: true });
  console.error(result.stderr.trim().split('\n').slice(0, 20).join('\n'));
  skip(`${compiler} failed`);
}
if (result.stderr.trim() !== '') console.warn(result.stderr.trim());
fs.renameSync(temporary, output);
console.log(`built the native training fast path: ${path.relative(root, output)} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
