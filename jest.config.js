/** Jest: TypeScript through swc (type-checking is `tsc --noEmit`, run by `npm test` first). */
module.exports = {
  testEnvironment: '<rootDir>/test/support/host-realm-environment.js',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: { '^.+\\.ts$': ['@swc/jest', { jsc: { target: 'es2022' } }] },
  moduleNameMapper: { '^deepvision$': '<rootDir>/src/index.ts' },
  testTimeout: 120000,
  // The default report, plus one line naming the data-lane tests skipped for want of ../shared (test/support/shared.ts).
  reporters: ['default', '<rootDir>/test/support/data-lane-reporter.js'],
};
