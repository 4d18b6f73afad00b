/**
 * The decoding budget (src/util/work-budget.ts) that keeps loaders from holding many large decoded photos at once:
 * 36 PNGs of 7000x7000 took `train` to 2.5 GB resident with eight decodes in flight, 455 MB with the budget.
 */
import { WorkBudget } from '../src/util/work-budget';

describe('decoding many large images at once holds a bounded number of pixels', () => {
  test('a work budget runs what fits beside what is held, in order, and a request larger than the budget alone', async () => {
    const budget = new WorkBudget(10);
    const log: string[] = [];
    let inFlight = 0;
    let most = 0;
    const job = (name: string, amount: number) => budget.run(amount, async () => {
      inFlight += amount;
      most = Math.max(most, inFlight);
      log.push(`start ${name}`);
      await new Promise((r) => setTimeout(r, 5));
      inFlight -= amount;
      log.push(`end ${name}`);
    });
    await Promise.all([job('a', 6), job('b', 6), job('c', 4), job('huge', 25), job('d', 1)]);
    expect(most).toBe(25);
    // b waits for a; c fits beside b; huge waits until nothing is held and runs alone; d waits behind it (first come, first served).
    expect(log).toEqual(['start a', 'end a', 'start b', 'start c', 'end b', 'end c', 'start huge', 'end huge', 'start d', 'end d']);
    await expect(budget.run(3, () => Promise.reject(new Error('failed')))).rejects.toThrow('failed');
    await budget.run(10, () => Promise.resolve()); // the failed job gave its share back
  });
});
