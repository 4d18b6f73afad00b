// Jest runs each test file in its own vm context with its own typed-array constructors. onnxruntime-node checks
// `data instanceof Float32Array` against the host realm's constructors, so a tensor made in a test (or an output fed
// back into session.run) would be rejected. Give the test context the host realm's constructors.
const { TestEnvironment } = require('jest-environment-node');

const HOST_CONSTRUCTORS = [
  'ArrayBuffer', 'SharedArrayBuffer', 'DataView', 'Uint8Array', 'Uint8ClampedArray', 'Int8Array', 'Uint16Array',
  'Int16Array', 'Uint32Array', 'Int32Array', 'Float32Array', 'Float64Array', 'BigInt64Array', 'BigUint64Array',
];

class HostRealmEnvironment extends TestEnvironment {
  constructor(config, context) {
    super(config, context);
    for (const name of HOST_CONSTRUCTORS) this.global[name] = globalThis[name];
  }
}

module.exports = HostRealmEnvironment;
