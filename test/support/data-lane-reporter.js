/**
 * Jest reporter: one summary line for the data-lane tests that were skipped because the shared data folder is
 * missing (see test/support/shared.ts), so that a fresh clone says what it did not test and why.
 */
const path = require('node:path');

const TAG = '[data] ';
const MARK = ' -- skipped: ';

class DataLaneReporter {
  onRunComplete(_contexts, results) {
    // Data-lane tests ('[data] ...') and capability tests (test/support/skips.ts) skipped, by file and reason.
    const lanes = { data: { perFile: new Map(), reasons: new Set() }, capability: { perFile: new Map(), reasons: new Set() } };
    for (const file of results.testResults) {
      for (const t of file.testResults) {
        if (t.status !== 'pending' || !t.title.includes(MARK)) continue;
        const lane = t.title.startsWith(TAG) ? lanes.data : lanes.capability;
        const name = path.basename(file.testFilePath).replace(/\.test\.ts$/, '');
        lane.perFile.set(name, (lane.perFile.get(name) ?? 0) + 1);
        lane.reasons.add(t.title.slice(t.title.indexOf(MARK) + MARK.length));
      }
    }
    const line = (lane, what, how) => {
      if (lane.perFile.size === 0) return;
      const count = [...lane.perFile.values()].reduce((a, b) => a + b, 0);
      const where = [...lane.perFile].map(([name, n]) => `${name} ${n}`).join(', ');
      const why = [...lane.reasons];
      process.stderr.write(
        `\n${what}: skipped ${count} test${count === 1 ? '' : 's'} (${where}): `
        + `${why.slice(0, 2).join('; ')}${why.length > 2 ? `; ${why.length - 2} more reasons` : ''}. ${how}\n`,
      );
    };
    line(lanes.data, 'data lane', 'Set DEEPVISION_SHARED to the shared folder to run them (npm run test:data).');
    line(lanes.capability, 'machine capabilities', 'CI requires them (CI=true).');
  }
}

module.exports = DataLaneReporter;
