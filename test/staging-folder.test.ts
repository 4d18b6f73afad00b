/** The hidden folders exports write into: one per export, and those a killed export left behind are cleared. */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createStagingFolder } from '../src/export/staging-folder';

test('a killed export\'s folder is removed by the next export to the same target; live ones and other targets stay', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'deepvision-staging-'));
  try {
    // A PID that ran and has ended: a finished child's.
    const dead = spawnSync(process.execPath, ['-e', '']).pid;
    const abandoned = path.join(dir, `.small.export-${dead}-abc123`);
    const live = path.join(dir, `.small.export-${process.ppid}-def456`);
    const otherTarget = path.join(dir, `.large.export-${dead}-ghi789`);
    const otherKind = path.join(dir, `.small.teach-${dead}-jkl012`);
    for (const d of [abandoned, live, otherTarget, otherKind]) fs.mkdirSync(path.join(d, 'sub'), { recursive: true });

    const stage = createStagingFolder(path.join(dir, 'small'), 'export');

    expect(path.basename(stage)).toMatch(new RegExp(`^\\.small\\.export-${process.pid}-`));
    expect(fs.statSync(stage).mode & 0o777).toBe(0o755);
    expect(fs.readdirSync(dir).sort()).toEqual([path.basename(live), path.basename(otherTarget), path.basename(otherKind), path.basename(stage)].sort());
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
