/**
 * Caption generation by greedy and beam search over a decoder that runs one step at a time: the same code drives
 * the exported decoder-step model in Node and in the web page (it imports nothing but its caller's step function).
 * A step takes the previous token of each row and that row's state, and returns log-probabilities over the
 * vocabulary and the next state; beams are rows of one step, so each step is one model run.
 */

/** One step of a decoder for a batch of rows (beams). */
export interface StepModel<S> {
  /** Log-probabilities [rows x vocabulary] (row-major), the new state, and optionally attention weights [rows x regions]. */
  step(tokens: readonly number[], state: S): Promise<{ logProbs: Float32Array; state: S; attention?: Float32Array }>;
  /** The state of the given rows, in that order (beams that continue, some twice). */
  select(state: S, rows: readonly number[]): S;
  vocabularySize: number;
}

export interface SearchOptions {
  startId: number;
  endId: number;
  /** Longest caption in tokens (without start and end). */
  maxLength: number;
  /** Beams (1: greedy). */
  beam?: number;
  /**
   * Length normalization: hypotheses are ranked by log-probability / length^alpha (0: raw log-probability, which
   * favours short captions; 1: mean log-probability per token). Default 0.7.
   */
  lengthPenalty?: number;
}

export interface Caption {
  /** Token ids, without start and end. */
  tokens: number[];
  /** Sum of the tokens' log-probabilities (the end token's included when the caption ended). */
  logProb: number;
  /** What the ranking used: logProb / length^alpha. */
  score: number;
  /** Attention weights over regions for each generated token (when the model reports them). */
  attention?: Float32Array[];
}

interface Hypothesis {
  tokens: number[];
  logProb: number;
  row: number;
  attention?: Float32Array[];
}

/**
 * The best captions for one image, best first (up to `beam` of them), from its initial decoder state (one row).
 * With beam 1 this is greedy decoding.
 */
export async function searchCaptions<S>(model: StepModel<S>, initial: S, o: SearchOptions): Promise<Caption[]> {
  const k = o.beam ?? 1;
  if (!Number.isInteger(k) || k < 1) throw new Error(`beam must be a positive integer, got ${k}`);
  if (!Number.isInteger(o.maxLength) || o.maxLength < 1) throw new Error(`maxLength must be a positive integer, got ${o.maxLength}`);
  const alpha = o.lengthPenalty ?? 0.7;
  const score = (logProb: number, length: number) => logProb / Math.max(1, length) ** alpha;
  const v = model.vocabularySize;
  const finished: Caption[] = [];
  let alive: Hypothesis[] = [{ tokens: [], logProb: 0, row: 0 }];
  let state = initial;
  const finish = (h: Hypothesis, logProb: number) => finished.push({ tokens: h.tokens, logProb, score: score(logProb, h.tokens.length), ...(h.attention ? { attention: h.attention } : {}) });
  for (let t = 0; alive.length > 0; t++) {
    const previous = alive.map((h) => (h.tokens.length === 0 ? o.startId : h.tokens[h.tokens.length - 1]!));
    const out = await model.step(previous, state);
    if (out.logProbs.length !== alive.length * v) throw new Error(`the decoder step returned ${out.logProbs.length} log-probabilities for ${alive.length} rows of a ${v}-word vocabulary`);
    const regions = out.attention ? out.attention.length / alive.length : 0;
    const withAttention = (h: Hypothesis, r: number) => (out.attention ? [...(h.attention ?? []), out.attention.slice(r * regions, (r + 1) * regions)] : undefined);
    if (t === o.maxLength) {
      // Out of length: every live caption ends here, with its end token's probability.
      alive.forEach((h, r) => finish({ ...h, attention: withAttention(h, r) }, h.logProb + out.logProbs[r * v + o.endId]!));
      break;
    }
    // Candidates: each row's best k continuations are enough for the best k overall.
    const candidates: { from: number; token: number; logProb: number }[] = [];
    alive.forEach((h, r) => {
      for (const token of topIndices(out.logProbs.subarray(r * v, (r + 1) * v), k)) candidates.push({ from: r, token, logProb: h.logProb + out.logProbs[r * v + token]! });
    });
    candidates.sort((a, b) => b.logProb - a.logProb || a.from - b.from || a.token - b.token);
    const next: Hypothesis[] = [];
    for (const c of candidates) {
      if (next.length >= k) break;
      const h = alive[c.from]!;
      const attention = withAttention(h, c.from);
      // An ended caption is set aside; it does not take a beam from those still growing.
      if (c.token === o.endId) finish({ ...h, attention }, c.logProb);
      else next.push({ tokens: [...h.tokens, c.token], logProb: c.logProb, row: c.from, ...(attention ? { attention } : {}) });
    }
    // Enough finished captions, and no live beam can still outrank the k-th best: stop.
    const ranked = [...finished].sort((a, b) => b.score - a.score);
    if (ranked.length >= k && next.every((h) => upperBound(h, o.maxLength, alpha) <= ranked[k - 1]!.score)) break;
    if (next.length === 0) break;
    state = model.select(out.state, next.map((h) => h.row));
    next.forEach((h, i) => (h.row = i));
    alive = next;
  }
  return finished.sort((a, b) => b.score - a.score).slice(0, k);
}

/** The best score a live hypothesis could still reach: log-probabilities only fall, but a longer caption divides by more. */
function upperBound(h: Hypothesis, maxLength: number, alpha: number): number {
  if (alpha === 0) return h.logProb;
  // logProb is negative; it can only decrease, so the best is to stop as late as possible (largest divisor).
  return h.logProb / Math.max(1, maxLength) ** alpha;
}

/** Indices of the k largest values, largest first (ties: the lower index first). */
export function topIndices(values: ArrayLike<number>, k: number): number[] {
  const best: number[] = [];
  for (let i = 0; i < values.length; i++) {
    if (best.length === k && values[i]! <= values[best[k - 1]!]!) continue;
    let at = best.length === k ? k - 1 : best.length;
    while (at > 0 && values[best[at - 1]!]! < values[i]!) at--;
    best.splice(at, 0, i);
    if (best.length > k) best.pop();
  }
  return best;
}

/**
 * Greedy captions for many images at once (rows of one step; no beams to reorder): the most likely token at each
 * step until every row has produced its end token or `maxLength` tokens. Returns each row's tokens (without end).
 */
export async function greedyCaptions<S>(model: StepModel<S>, initial: S, rows: number, o: Omit<SearchOptions, 'beam' | 'lengthPenalty'>): Promise<number[][]> {
  const v = model.vocabularySize;
  const tokens: number[][] = Array.from({ length: rows }, () => []);
  const done = new Array<boolean>(rows).fill(false);
  let previous = new Array<number>(rows).fill(o.startId);
  let state = initial;
  for (let t = 0; t < o.maxLength && done.some((d) => !d); t++) {
    const out = await model.step(previous, state);
    if (out.logProbs.length !== rows * v) throw new Error(`the decoder step returned ${out.logProbs.length} log-probabilities for ${rows} rows of a ${v}-word vocabulary`);
    previous = previous.map((_, r) => {
      if (done[r]) return o.endId;
      const best = topIndices(out.logProbs.subarray(r * v, (r + 1) * v), 1)[0]!;
      if (best === o.endId) done[r] = true;
      else tokens[r]!.push(best);
      return best;
    });
    state = out.state;
  }
  return tokens;
}
