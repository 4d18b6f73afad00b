import * as fs from 'node:fs';
import * as path from 'node:path';

/**
 * The data lane: tests that read the team's real data sets and pretrained models from the shared folder beside the
 * checkout (../shared, or DEEPVISION_SHARED). A user's clone has no such folder, so these tests are skipped there,
 * and the data-lane reporter names them in one summary line; with DEEPVISION_REQUIRE_SHARED=1 (CI) a missing file
 * fails the test instead, so the lane can never pass silently where it is expected to run.
 */
export function sharedDir(): string {
  return process.env.DEEPVISION_SHARED ?? path.resolve(__dirname, '..', '..', '..', 'shared');
}

/** A file of the shared folder (only call it inside a dataTest, which checks that it exists). */
export function sharedFile(relative: string): string {
  return path.join(sharedDir(), relative);
}

/** A committed fixture of test/fixtures (see test/fixtures/SOURCE.md). */
export function fixture(relative: string): string {
  return path.resolve(__dirname, '..', 'fixtures', relative);
}

/** Marks data-lane test names, so that `jest -t '\[data\]'` selects the lane and the reporter finds its skips. */
export const DATA_TAG = '[data]';
/** What a skipped data-lane test's name ends with; the reporter reads the reason from it. */
export const SKIP_MARK = ' -- skipped: ';

/** The shared files among `needs` that are missing. */
export function missingShared(needs: readonly string[]): string[] {
  return needs.filter((relative) => !fs.existsSync(sharedFile(relative)));
}

/** A data-lane test: runs when the shared files it needs exist, else is skipped (or fails, under DEEPVISION_REQUIRE_SHARED). */
export function dataTest(name: string, needs: readonly string[], fn: () => unknown, timeout?: number): void {
  const missing = missingShared(needs);
  const title = `${DATA_TAG} ${name}`;
  if (missing.length === 0) {
    test(title, fn as () => Promise<void>, timeout);
  } else if (process.env.DEEPVISION_REQUIRE_SHARED === '1') {
    test(title, () => {
      throw new Error(`shared data missing: ${missing.map(sharedFile).join(', ')} (DEEPVISION_REQUIRE_SHARED=1 requires the data lane; set DEEPVISION_SHARED to the shared folder)`);
    });
  } else {
    test.skip(`${title}${SKIP_MARK}${path.join(sharedDir(), missing[0]!)} is missing`, () => undefined);
  }
}
