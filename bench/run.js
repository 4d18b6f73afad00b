#!/usr/bin/env node
// Runs a TypeScript benchmark from source with jiti, resolving graph files' `import ... from 'deepvision'` to the
// same source tree (one copy of the library). Usage: node bench/run.js bench/<name>.ts [args...]
'use strict';
const path = require('node:path');
const { createJiti } = require('jiti');

const [script, ...rest] = process.argv.slice(2);
if (!script) {
  console.error('usage: node bench/run.js bench/<name>.ts [args...]');
  process.exit(1);
}
process.argv = [process.argv[0], path.resolve(script), ...rest];
const jiti = createJiti(__filename, { alias: { deepvision: path.join(__dirname, '..', 'src', 'index.ts') }, fsCache: false });
jiti.import(path.resolve(script)).catch((err) => {
  console.error(err);
  process.exit(1);
});
