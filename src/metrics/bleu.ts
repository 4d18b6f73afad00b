import { ngramCounts } from './ngrams';

export interface BleuScores {
  /** BLEU-1 .. BLEU-maxOrder: uniform weights over the orders 1..n, brevity penalty included. */
  bleu: number[];
  /** The corpus modified n-gram precisions, orders 1..maxOrder (matches / hypothesis n-grams). */
  precisions: number[];
  brevityPenalty: number;
  /** Total hypothesis words, and the sum over hypotheses of the closest reference length. */
  hypothesisLength: number;
  referenceLength: number;
}

/**
 * Corpus BLEU (Papineni et al. 2002) over token lists, as NLTK's corpus_bleu computes it without smoothing: n-gram
 * matches clipped by the most any one reference holds, numerators and denominators summed over the corpus before
 * dividing; each hypothesis counts at least one n-gram per order in the denominator (NLTK's max(1, count)); the
 * reference length is the closest reference's, the shorter one on a tie; brevity penalty exp(1 - r/c) when c <= r.
 * All references of an image count. BLEU-n is 0 when some order up to n has no match (NLTK returns a value below
 * 1e-70 there; the COCO evaluation adds 1e-15 to each count instead, which gives small non-zero values) and when
 * the hypotheses are empty.
 */
export function corpusBleu(hypotheses: readonly (readonly string[])[], references: readonly (readonly (readonly string[])[])[], maxOrder = 4): BleuScores {
  if (hypotheses.length !== references.length) throw new RangeError(`${hypotheses.length} hypotheses but ${references.length} reference lists`);
  if (!Number.isSafeInteger(maxOrder) || maxOrder < 1) throw new RangeError(`maxOrder must be a whole number >= 1, got ${maxOrder}`);
  const matches = new Array<number>(maxOrder).fill(0);
  const totals = new Array<number>(maxOrder).fill(0);
  let hypothesisLength = 0;
  let referenceLength = 0;
  hypotheses.forEach((hypothesis, i) => {
    const refs = references[i]!;
    if (refs.length === 0) throw new RangeError(`hypothesis ${i} has no references`);
    for (let n = 1; n <= maxOrder; n++) {
      const counts = ngramCounts(hypothesis, n);
      // The most often each n-gram occurs in any single reference: the clip.
      const clip = new Map<string, number>();
      for (const ref of refs) {
        for (const [gram, c] of ngramCounts(ref, n)) if (counts.has(gram) && c > (clip.get(gram) ?? 0)) clip.set(gram, c);
      }
      let matched = 0;
      let total = 0;
      for (const [gram, c] of counts) {
        matched += Math.min(c, clip.get(gram) ?? 0);
        total += c;
      }
      matches[n - 1] = matches[n - 1]! + matched;
      totals[n - 1] = totals[n - 1]! + Math.max(1, total);
    }
    hypothesisLength += hypothesis.length;
    referenceLength += closestLength(refs, hypothesis.length);
  });
  const brevityPenalty = hypothesisLength > referenceLength ? 1 : hypothesisLength === 0 ? 0 : Math.exp(1 - referenceLength / hypothesisLength);
  const precisions = matches.map((m, n) => (totals[n] === 0 ? 0 : m / totals[n]!));
  const bleu: number[] = [];
  let logSum = 0;
  for (let n = 1; n <= maxOrder; n++) {
    logSum += Math.log(precisions[n - 1]!);
    // log(0) = -Infinity gives exp(-Infinity) = 0: an order without matches zeroes BLEU-n and every higher BLEU.
    bleu.push(brevityPenalty === 0 ? 0 : brevityPenalty * Math.exp(logSum / n));
  }
  return { bleu, precisions, brevityPenalty, hypothesisLength, referenceLength };
}

/** The reference length closest to the hypothesis length; the shorter reference on a tie. */
function closestLength(refs: readonly (readonly string[])[], length: number): number {
  let best = refs[0]!.length;
  for (const ref of refs) {
    const d = Math.abs(ref.length - length);
    const bestD = Math.abs(best - length);
    if (d < bestD || (d === bestD && ref.length < best)) best = ref.length;
  }
  return best;
}
