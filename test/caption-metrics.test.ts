/** Caption metrics: corpus BLEU against Debian's NLTK (python3-nltk), CIDEr-D against values computed by hand. */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tokenize } from '../src/portable/tokenize';
import { openCaptionSource } from '../src/data/kinds';
import { corpusBleu } from '../src/metrics/bleu';
import { ciderD } from '../src/metrics/cider';
import { dataTest, fixture, sharedFile } from './support/shared';

const PYTHON = '/usr/bin/python3';

type Tokens = string[];
interface BleuCase {
  hypotheses: Tokens[];
  references: Tokens[][];
}

/** BLEU-1..4 of each case from NLTK's corpus_bleu (no smoothing), in one Python process. */
function nltkBleu(cases: BleuCase[]): number[][] {
  if (!fs.existsSync(PYTHON) || spawnSync(PYTHON, ['-c', 'import nltk.translate.bleu_score']).status !== 0) {
    throw new Error('NLTK is not installed: run `bash scripts/install-system-deps.sh` (Debian package python3-nltk)');
  }
  const script = [
    'import json, sys, warnings',
    'from nltk.translate.bleu_score import corpus_bleu',
    'warnings.simplefilter("ignore")', // NLTK warns on orders without matches
    'weights = [(1.0,), (1/2,) * 2, (1/3,) * 3, (1/4,) * 4]',
    'out = [[float(s) for s in corpus_bleu(c["references"], c["hypotheses"], weights=weights)] for c in json.load(sys.stdin)]',
    'print(json.dumps(out))',
  ].join('\n');
  const r = spawnSync(PYTHON, ['-c', script], { input: JSON.stringify(cases), encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (r.status !== 0) throw new Error(`the NLTK script failed:\n${r.stderr}`);
  return JSON.parse(r.stdout) as number[][];
}

/** Each BLEU-n equal to NLTK's to 1e-12 (NLTK gives about 1e-77 where an order has no match; we give 0). */
function expectBleuLikeNltk(cases: BleuCase[]): number[][] {
  const expected = nltkBleu(cases);
  return cases.map((c, i) => {
    const ours = corpusBleu(c.hypotheses, c.references).bleu;
    ours.forEach((v, n) => {
      const want = expected[i]![n]!;
      if (Math.abs(v - want) > 1e-12 * Math.max(1, Math.abs(want))) throw new Error(`case ${i}: BLEU-${n + 1} is ${v}, NLTK gives ${want}`);
    });
    return ours;
  });
}

const words = (s: string): Tokens => s.split(' ').filter((w) => w !== '');

describe('corpus BLEU', () => {
  test('agrees with NLTK on Flickr8k captions (fixture) and on edge cases: short hypotheses, clipping, ties, no matches', () => {
    const images = JSON.parse(fs.readFileSync(fixture('captions/flickr8k-test-first12.json'), 'utf8')) as { captions: string[] }[];
    const refs = images.map((im) => im.captions.slice(1).map(tokenize));
    const cases: BleuCase[] = [
      // Human BLEU: each image's first caption against its other four.
      { hypotheses: images.map((im) => tokenize(im.captions[0]!)), references: refs },
      // Each image's caption against the next image's references: few matches, some orders with none.
      { hypotheses: images.map((_, i) => tokenize(images[(i + 1) % images.length]!.captions[0]!)), references: refs },
      // Hypotheses shorter than n count one n-gram in the denominator (NLTK's max(1, count)).
      { hypotheses: [['a'], words('a dog'), words('a dog runs fast on grass')], references: [[words('a cat')], [words('a dog runs')], [words('a dog runs fast on the grass')]] },
      // Clipping: 'the' matches at most twice (the most any one reference holds).
      { hypotheses: [words('the the the the the cat')], references: [[words('the cat on the mat'), words('there is a cat')]] },
      // Closest reference length: 5 words against references of 4 and 6 picks 4 (c > r, no penalty)...
      { hypotheses: [words('a b c d e')], references: [[words('a b c d e f'), words('a b c d')]] },
      // ...and the brevity penalty when the hypotheses are shorter.
      { hypotheses: [words('a b c'), words('x y z w')], references: [[words('a b c d e f g')], [words('x y z w v u')]] },
      // No unigram in common: 0 everywhere; an empty hypothesis among others.
      { hypotheses: [words('p q r')], references: [[words('a b c')]] },
      { hypotheses: [[], words('a small dog runs on the grass')], references: [[words('a dog')], [words('a small dog runs on green grass')]] },
    ];
    const scores = expectBleuLikeNltk(cases);
    // The human captions: BLEU falls with the order, and BLEU-1 is in the range reported for Flickr8k.
    expect(scores[0]![0]).toBeGreaterThan(0.5);
    expect(scores[0]![3]).toBeLessThan(scores[0]![0]!);
    expect(scores[6]).toEqual([0, 0, 0, 0]);
  });

  test('identical captions give 1; precisions, lengths and the brevity penalty are reported', () => {
    const ref = words('a dog runs on the grass');
    expect(corpusBleu([ref], [[ref]]).bleu).toEqual([1, 1, 1, 1]);
    const s = corpusBleu([words('a dog runs')], [[ref]]);
    expect(s.precisions).toEqual([1, 1, 1, 0]);
    expect(s.hypothesisLength).toBe(3);
    expect(s.referenceLength).toBe(6);
    expect(s.brevityPenalty).toBeCloseTo(Math.exp(1 - 6 / 3), 15);
    expect(s.bleu[2]).toBeCloseTo(Math.exp(-1), 15);
    expect(s.bleu[3]).toBe(0);
    expect(() => corpusBleu([ref], [])).toThrow(/1 hypotheses but 0 reference lists/);
    expect(() => corpusBleu([ref], [[]])).toThrow(/no references/);
  });

  dataTest('agrees with NLTK on the 1,000 Flickr8k test images (first caption against the other four)', ['data/flickr8k/Flickr8k.token.txt'], () => {
    const test = openCaptionSource(path.dirname(sharedFile('data/flickr8k/Flickr8k.token.txt'))).splits.test!;
    expect(test).toHaveLength(1000);
    const [scores] = expectBleuLikeNltk([{
      hypotheses: test.map((e) => tokenize(e.captions[0]!)),
      references: test.map((e) => e.captions.slice(1).map(tokenize)),
    }]);
    expect(scores![0]).toBeGreaterThan(0.5);
  });
});

describe('CIDEr-D (hand-computed)', () => {
  // Two images, one reference each: every n-gram of a reference occurs in one image (df 1), so its weight is
  // tf * (log 2 - log 1) = tf * ln 2, and so is the weight of an n-gram no reference has (df taken as 1).
  const refs = [[words('a b')], [words('c d')]];

  test('a hypothesis equal to its reference: cosine 1 for unigrams and bigrams, 0 for the orders it lacks -> 10 * 2/4 = 5', () => {
    const s = ciderD([words('a b'), words('c d')], refs);
    expect(s.perImage[0]).toBeCloseTo(5, 12);
    expect(s.perImage[1]).toBeCloseTo(5, 12);
    expect(s.score).toBeCloseTo(5, 12);
  });

  test('clipping: "a a" against "a b" counts a once: (ln2 * ln2) / (2 ln2 * sqrt2 ln2) / 4 * 10 = 10 / (8 sqrt 2)', () => {
    const s = ciderD([words('a a'), words('c d')], refs);
    expect(s.perImage[0]).toBeCloseTo(10 / (8 * Math.SQRT2), 12);
    expect(s.score).toBeCloseTo((10 / (8 * Math.SQRT2) + 5) / 2, 12);
  });

  test('length penalty: "a b x" against "a b": (2/sqrt6 + 1/sqrt2) * exp(-1/72) / 4 * 10', () => {
    // Unigrams: a, b, x (x in no reference: weight ln 2) against a, b: 2 ln2^2 / (sqrt3 ln2 * sqrt2 ln2) = 2/sqrt6.
    // Bigrams: "a b", "b x" against "a b": 1/sqrt2. Trigrams: the reference has none (norm 0): 0. One bigram more
    // than the reference: penalty exp(-1^2 / (2 * 6^2)).
    const s = ciderD([words('a b x'), words('c d')], refs);
    expect(s.perImage[0]).toBeCloseTo(((2 / Math.sqrt(6) + 1 / Math.SQRT2) * Math.exp(-1 / 72) * 10) / 4, 12);
    // sigma is an option: a wider Gaussian penalizes less.
    expect(ciderD([words('a b x'), words('c d')], refs, { sigma: 12 }).perImage[0]).toBeCloseTo(((2 / Math.sqrt(6) + 1 / Math.SQRT2) * Math.exp(-1 / 288) * 10) / 4, 12);
  });

  test('document frequency counts images, not references; scores are averaged over references', () => {
    // 'a' is in both images' references: idf log 2 - log 2 = 0, so it weighs nothing. Image 1: against "a b" the
    // unigram and bigram cosines are 1; against "a c" both are 0: (1 + 1 + 0 + 0 + 0 + 0 + 0 + 0) / 4 / 2 * 10 = 2.5.
    // Image 2: "a d" against itself: 2 / 4 * 10 = 5. (Counted per reference, df(a) = 3 would make a's weight negative.)
    const s = ciderD([words('a b'), words('a d')], [[words('a b'), words('a c')], [words('a d')]]);
    expect(s.perImage[0]).toBeCloseTo(2.5, 12);
    expect(s.perImage[1]).toBeCloseTo(5, 12);
    expect(s.score).toBeCloseTo(3.75, 12);
  });

  test('an empty hypothesis scores 0; mismatched inputs are refused', () => {
    expect(ciderD([[], words('c d')], refs).perImage[0]).toBe(0);
    expect(() => ciderD([words('a')], refs)).toThrow(/1 hypotheses but 2 reference lists/);
    expect(() => ciderD([words('a')], [[]])).toThrow(/no references/);
  });
});
