import { ngramCounts } from './ngrams';

export interface CiderOptions {
  /** Highest n-gram order (4). */
  maxOrder?: number;
  /** Standard deviation of the Gaussian length penalty, in words (6). */
  sigma?: number;
}

export interface CiderScores {
  /** CIDEr-D of the corpus: the mean of the per-image scores. */
  score: number;
  perImage: number[];
}

/** One caption as tf-idf vectors, one per order, with their norms. */
interface Vectors {
  weights: Map<string, number>[];
  norms: number[];
  /** What the reference code calls the length: the caption's number of bigrams (see below). */
  length: number;
}

/**
 * CIDEr-D (Vedantam et al. 2015) over token lists, as the COCO caption evaluation (pycocoevalcap's Cider) computes it:
 * for n = 1..4, each caption becomes a vector of n-gram counts times idf = log(images) - log(max(1, df)), where df
 * is the number of images whose references contain the n-gram (document frequencies come from the references being
 * scored, not from a fixed corpus); the hypothesis is compared with each reference by the cosine of the vectors with
 * the hypothesis weights clipped to the reference's (min(h, r) * r), times exp(-(lh - lr)^2 / (2 sigma^2)); the
 * orders are averaged, then the references, and the result is scaled by 10.
 */
export function ciderD(hypotheses: readonly (readonly string[])[], references: readonly (readonly (readonly string[])[])[], options: CiderOptions = {}): CiderScores {
  const maxOrder = options.maxOrder ?? 4;
  const sigma = options.sigma ?? 6;
  if (hypotheses.length !== references.length) throw new RangeError(`${hypotheses.length} hypotheses but ${references.length} reference lists`);
  const counts = (tokens: readonly string[]) => Array.from({ length: maxOrder }, (_, n) => ngramCounts(tokens, n + 1));
  const refCounts = references.map((refs, i) => {
    if (refs.length === 0) throw new RangeError(`hypothesis ${i} has no references`);
    return refs.map(counts);
  });
  // Document frequency: in how many images' reference sets each n-gram occurs (n-grams of different orders never
  // share a key: their JSON arrays differ in length).
  const df = new Map<string, number>();
  for (const refs of refCounts) {
    const seen = new Set<string>();
    for (const ref of refs) for (const order of ref) for (const gram of order.keys()) seen.add(gram);
    for (const gram of seen) df.set(gram, (df.get(gram) ?? 0) + 1);
  }
  const logImages = Math.log(references.length);
  const vectors = (c: Map<string, number>[]): Vectors => {
    const weights = c.map((order) => {
      const w = new Map<string, number>();
      for (const [gram, tf] of order) w.set(gram, tf * (logImages - Math.log(Math.max(1, df.get(gram) ?? 0))));
      return w;
    });
    const norms = weights.map((w) => Math.sqrt([...w.values()].reduce((s, v) => s + v * v, 0)));
    // The reference code adds a caption's term frequencies to its length at order index 1, which is the bigrams:
    // its "length" is the number of bigrams, the word count less one for a non-empty caption. Kept, to give its values.
    const length = c.length > 1 ? [...c[1]!.values()].reduce((s, v) => s + v, 0) : 0;
    return { weights, norms, length };
  };
  const perImage = hypotheses.map((hypothesis, i) => {
    const h = vectors(counts(hypothesis));
    let sum = 0;
    for (const refCount of refCounts[i]!) {
      const r = vectors(refCount);
      const penalty = Math.exp(-((h.length - r.length) ** 2) / (2 * sigma * sigma));
      for (let n = 0; n < maxOrder; n++) {
        let dot = 0;
        for (const [gram, hw] of h.weights[n]!) {
          const rw = r.weights[n]!.get(gram) ?? 0;
          dot += Math.min(hw, rw) * rw;
        }
        // A zero vector (a caption shorter than n words, or only n-grams every image has) leaves the raw sum, 0.
        if (h.norms[n] !== 0 && r.norms[n] !== 0) dot /= h.norms[n]! * r.norms[n]!;
        sum += dot * penalty;
      }
    }
    return (10 * sum) / maxOrder / refCounts[i]!.length;
  });
  const score = perImage.length === 0 ? 0 : perImage.reduce((s, v) => s + v, 0) / perImage.length;
  return { score, perImage };
}
