/** Jest: TypeScript through swc (type-checking is `tsc --noEmit`, run by `npm test` first). */
/**
 * Two lanes: `npm run test:unit` (DEEPVISION_LANE=unit) leaves out the end-to-end suites below (training runs, the
 * browser, WebGPU on lavapipe, the CLI in child processes, sweeps, exports), about a minute on 2 cores;
 * `npm test` runs everything.
 */
const END_TO_END = [
  'train-shapes', 'trainer', 'transfer', 'captioner', 'reliability', 'cli', 'browser', 'webgpu', 'webgpu-training', 'sweep',
  'export', 'export-hostile', 'hostile-files', 'export-captioner', 'backbone-gradients', 'device', 'browser-teach', 'teach',
  'cli-paths',
];

module.exports = {
  testEnvironment: '<rootDir>/test/support/host-realm-environment.js',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  testPathIgnorePatterns: process.env.DEEPVISION_LANE === 'unit' ? END_TO_END.map((name) => `/test/${name}\\.test\\.ts$`) : [],
  transform: { '^.+\\.ts$': ['@swc/jest', { jsc: { target: 'es2022' } }] },
  moduleNameMapper: { '^deepvision$': '<rootDir>/src/index.ts' },
  testTimeout: 120000,
  // The default report, plus one line naming the data-lane tests skipped for want of ../shared (test/support/shared.ts).
  reporters: ['default', '<rootDir>/test/support/data-lane-reporter.js'],
};
