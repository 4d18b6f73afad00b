/** Greedy and beam search over a decoder step (src/portable/caption-search.ts), against exhaustive search on a toy decoder. */
import { Caption, searchCaptions, StepModel, topIndices } from '../src/portable/caption-search';
import { Rng } from '../src/util/rng';

const START = 1;
const END = 2;

/**
 * A toy decoder: the next token's log-probabilities depend on the previous token only (a seeded table), the state is
 * each row's step count (to check that rows are reordered with their beams), attention is a one-hot of the step.
 */
function markovDecoder(vocabulary: number, seed: number): StepModel<number[]> & { table: Float32Array[] } {
  const rng = new Rng(seed);
  const table = Array.from({ length: vocabulary }, (_, from) => {
    const logits = Array.from({ length: vocabulary }, (_, to) => (to === START || to === 0 ? -Infinity : 2 * rng.normal()) + (from === START && to === END ? -Infinity : 0));
    const max = Math.max(...logits);
    const z = Math.log(logits.reduce((s, l) => s + Math.exp(l - max), 0)) + max;
    return Float32Array.from(logits, (l) => l - z);
  });
  return {
    table,
    vocabularySize: vocabulary,
    async step(tokens, state) {
      expect(state).toHaveLength(tokens.length);
      const logProbs = new Float32Array(tokens.length * vocabulary);
      tokens.forEach((t, r) => logProbs.set(table[t]!, r * vocabulary));
      const attention = new Float32Array(tokens.length * 4);
      state.forEach((steps, r) => (attention[r * 4 + (steps % 4)] = 1));
      return { logProbs, state: state.map((s) => s + 1), attention };
    },
    select: (state, rows) => rows.map((r) => state[r]!),
  };
}

/** Every caption up to maxLength tokens, scored as the search scores them. */
function exhaustive(table: Float32Array[], maxLength: number, alpha: number): Caption[] {
  const out: Caption[] = [];
  const grow = (tokens: number[], logProb: number) => {
    const last = tokens.length === 0 ? START : tokens[tokens.length - 1]!;
    const ended = logProb + table[last]![END]!;
    if (Number.isFinite(ended)) out.push({ tokens, logProb: ended, score: ended / Math.max(1, tokens.length) ** alpha });
    if (tokens.length === maxLength) return;
    for (let t = 3; t < table.length; t++) grow([...tokens, t], logProb + table[last]![t]!);
  };
  grow([], 0);
  return out.sort((a, b) => b.score - a.score);
}

describe('caption search', () => {
  test('topIndices: the k largest, largest first', () => {
    expect(topIndices([0.1, 0.5, -1, 0.5, 2], 3)).toEqual([4, 1, 3]);
    expect(topIndices([3], 2)).toEqual([0]);
  });

  test('greedy decoding takes the most likely next token until the end token', async () => {
    const model = markovDecoder(6, 1);
    const [caption] = await searchCaptions(model, [0], { startId: START, endId: END, maxLength: 8, beam: 1 });
    let previous = START;
    let logProb = 0;
    const full = caption!.tokens.length === 8;
    for (const [i, token] of [...caption!.tokens, END].entries()) {
      const row = model.table[previous]!;
      // At the length limit the caption ends whatever comes next.
      if (!(full && i === 8)) expect(token).toBe(topIndices(row, 1)[0]);
      logProb += row[token]!;
      previous = token;
    }
    expect(caption!.logProb).toBeCloseTo(logProb, 5);
    expect(caption!.attention).toHaveLength(caption!.tokens.length + 1);
  });

  test('a wide enough beam finds the best caption of all, for raw and length-normalized scores', async () => {
    for (const seed of [2, 3, 4, 5]) {
      for (const alpha of [0, 0.7, 1]) {
        const model = markovDecoder(6, seed);
        const best = exhaustive(model.table, 4, alpha);
        const found = await searchCaptions(model, [0], { startId: START, endId: END, maxLength: 4, beam: 200, lengthPenalty: alpha });
        expect(found[0]!.tokens).toEqual(best[0]!.tokens);
        expect(found[0]!.score).toBeCloseTo(best[0]!.score, 5);
        // Ranked best first, each score as defined.
        for (let i = 1; i < found.length; i++) expect(found[i]!.score).toBeLessThanOrEqual(found[i - 1]!.score);
      }
    }
  });

  test('beam 3 returns at most three captions, never worse than greedy', async () => {
    for (const seed of [6, 7, 8]) {
      const model = markovDecoder(7, seed);
      const greedy = (await searchCaptions(model, [0], { startId: START, endId: END, maxLength: 6, beam: 1 }))[0]!;
      const beams = await searchCaptions(model, [0], { startId: START, endId: END, maxLength: 6, beam: 3 });
      expect(beams.length).toBeGreaterThan(0);
      expect(beams.length).toBeLessThanOrEqual(3);
      expect(beams[0]!.score).toBeGreaterThanOrEqual(greedy.score - 1e-6);
    }
  });

  test('a decoder that returns the wrong number of values, and bad options, are errors', async () => {
    const model = markovDecoder(5, 9);
    await expect(searchCaptions({ ...model, vocabularySize: 4 }, [0], { startId: START, endId: END, maxLength: 3 })).rejects.toThrow(/returned 5 log-probabilities for 1 rows of a 4-word vocabulary/);
    await expect(searchCaptions(model, [0], { startId: START, endId: END, maxLength: 3, beam: 0 })).rejects.toThrow(/beam must be a positive integer/);
  });
});
