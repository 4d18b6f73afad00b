/**
 * Jest reporter: one summary line for the data-lane tests that were skipped because the shared data folder is
 * missing (see test/support/shared.ts), so that a fresh clone says what it did not test and why.
 */
const path = require('node:path');

const TAG = '[data] ';
const MARK = ' -- skipped: ';

class DataLaneReporter {
  onRunComplete(_contexts, results) {
    const perFile = new Map();
    const reasons = new Set();
    for (const file of results.testResults) {
      for (const t of file.testResults) {
        if (t.status !== 'pending' || !t.title.startsWith(TAG) || !t.title.includes(MARK)) continue;
        const name = path.basename(file.testFilePath).replace(/\.test\.ts$/, '');
        perFile.set(name, (perFile.get(name) ?? 0) + 1);
        reasons.add(t.title.slice(t.title.indexOf(MARK) + MARK.length));
      }
    }
    if (perFile.size === 0) return;
    const count = [...perFile.values()].reduce((a, b) => a + b, 0);
    const where = [...perFile].map(([name, n]) => `${name} ${n}`).join(', ');
    const why = [...reasons];
    process.stderr.write(
      `\ndata lane: skipped ${count} test${count === 1 ? '' : 's'} (${where}) that need real data or pretrained models: `
      + `${why.slice(0, 2).join('; ')}${why.length > 2 ? `; ${why.length - 2} more missing` : ''}. `
      + 'Set DEEPVISION_SHARED to the shared folder to run them (npm run test:data).\n',
    );
  }
}

module.exports = DataLaneReporter;
