// ESLint: typescript-eslint's type-checked rules for the mistakes the compiler lets through (a promise nobody
// awaits, a promise where a callback's result is ignored, a condition that is always or never true).
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'models/**', 'node_modules/**', 'web-demo/app.js', 'web-demo/teach.js', '**/*.js', '**/*.mjs', '**/*.cjs'] },
  {
    files: ['src/**/*.ts', 'graphs/**/*.ts', 'bench/**/*.ts', 'test/**/*.ts', 'web-demo/src/**/*.ts'],
    languageOptions: {
      parser: tseslint.parser,
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    plugins: { '@typescript-eslint': tseslint.plugin },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/no-unnecessary-condition': 'error',
      '@typescript-eslint/await-thenable': 'error',
      // A require() is a deliberate lazy load, marked where it is one.
      '@typescript-eslint/no-require-imports': 'error',
    },
  },
);
