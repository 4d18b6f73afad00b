import { UserError } from '../util/user-error';
import { isToken } from './tokenize';

/** A vocabulary that cannot be built or read back: too high a minimum count, a damaged or foreign file. */
export class VocabularyError extends UserError {}

/** The special tokens, at fixed ids: a model's padding, start and end ids never depend on the data. */
export const PAD = 0;
export const START = 1;
export const END = 2;
export const UNK = 3;
const SPECIAL_TOKENS: readonly string[] = ['<pad>', '<start>', '<end>', '<unk>'];

const FORMAT = 'deepvision-vocabulary';
const VERSION = 1;
/** Far above any caption corpus (COCO's full training set has about 25,000 distinct words): a bound for reading. */
const MAX_WORDS = 1_000_000;

/** What toJSON writes and fromJSON reads: the tokens in id order, specials first. */
export interface VocabularyJSON {
  format: typeof FORMAT;
  version: typeof VERSION;
  minCount: number;
  tokens: string[];
}

/** One caption as model input: `maxLength` ids (<start>, words, <end>, then <pad>) and 1 where an id is not padding. */
export interface EncodedCaption {
  ids: Int32Array;
  mask: Uint8Array;
  /** Whether words were cut to fit maxLength. */
  truncated: boolean;
}

/**
 * The words a caption model knows, with ids: <pad> 0, <start> 1, <end> 2, <unk> 3, then the words of the training
 * captions that occur at least minCount times, most frequent first (ties in alphabetical order, so the same
 * captions always give the same ids). Saved with the model as JSON and read back as data.
 */
export class Vocabulary {
  private readonly index: Map<string, number>;

  private constructor(readonly tokens: readonly string[], readonly minCount: number) {
    this.index = new Map(tokens.map((t, i) => [t, i]));
  }

  /** Builds the vocabulary from tokenized training captions; a VocabularyError when no word is frequent enough. */
  static build(captions: Iterable<readonly string[]>, minCount: number): Vocabulary {
    if (!Number.isSafeInteger(minCount) || minCount < 1) throw new VocabularyError(`the minimum word count must be a whole number >= 1, got ${minCount}`);
    const counts = new Map<string, number>();
    let captionCount = 0;
    for (const caption of captions) {
      captionCount++;
      for (const word of caption) counts.set(word, (counts.get(word) ?? 0) + 1);
    }
    const byCount = [...counts].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    const kept = byCount.filter(([word, n]) => n >= minCount && isToken(word)).map(([word]) => word);
    if (kept.length === 0) {
      const top = byCount.find(([word]) => isToken(word));
      throw new VocabularyError(top === undefined
        ? `the vocabulary is empty: the ${captionCount} training captions have no words`
        : `the vocabulary is empty: no word occurs at least ${minCount} times in the ${captionCount} training captions (the most frequent, '${top[0]}', occurs ${top[1]} times); lower --min-count`);
    }
    return new Vocabulary([...SPECIAL_TOKENS, ...kept], minCount);
  }

  /** Tokens, specials included (the size of the model's embedding and output layers). */
  get size(): number {
    return this.tokens.length;
  }

  /** The id of a token; <unk> for words the vocabulary lacks. */
  id(token: string): number {
    return this.index.get(token) ?? UNK;
  }

  /**
   * <start>, the words' ids, <end>, then <pad> up to `maxLength` ids in all (the model's sequence length). Longer
   * captions lose their last words but keep <end>, so that every training sequence shows where to stop.
   */
  encode(tokens: readonly string[], maxLength: number): EncodedCaption {
    if (!Number.isSafeInteger(maxLength) || maxLength < 3) throw new RangeError(`maxLength must be a whole number >= 3 (<start>, a word, <end>), got ${maxLength}`);
    const ids = new Int32Array(maxLength); // zeros: <pad>
    const mask = new Uint8Array(maxLength);
    const words = Math.min(tokens.length, maxLength - 2);
    ids[0] = START;
    for (let i = 0; i < words; i++) ids[i + 1] = this.id(tokens[i]!);
    ids[words + 1] = END;
    mask.fill(1, 0, words + 2);
    return { ids, mask, truncated: words < tokens.length };
  }

  /** The words of a generated or encoded sequence: <start> and <pad> skipped, up to the first <end>; <unk> kept. */
  decodeTokens(ids: ArrayLike<number | bigint>): string[] {
    const out: string[] = [];
    for (let i = 0; i < ids.length; i++) {
      const id = Number(ids[i]!);
      if (id === END) break;
      if (id === START || id === PAD) continue;
      const token = this.tokens[id];
      if (!Number.isInteger(id) || token === undefined) throw new RangeError(`token id ${ids[i]} is outside the vocabulary (${this.size} tokens)`);
      out.push(token);
    }
    return out;
  }

  /** The text of a sequence of ids: its words joined by spaces. */
  decode(ids: ArrayLike<number | bigint>): string {
    return this.decodeTokens(ids).join(' ');
  }

  toJSON(): VocabularyJSON {
    return { format: FORMAT, version: VERSION, minCount: this.minCount, tokens: [...this.tokens] };
  }

  /**
   * Reads a vocabulary saved by toJSON, checking everything a model file could get wrong: the format, the special
   * tokens at their ids, every word being one token as tokenize() makes them, no duplicates, a bounded size.
   */
  static fromJSON(value: unknown): Vocabulary {
    const bad = (why: string) => new VocabularyError(`not a deepvision vocabulary: ${why}`);
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw bad('expected a JSON object');
    const v = value as Record<string, unknown>;
    if (v.format !== FORMAT) throw bad(`format is ${JSON.stringify(v.format)}, expected "${FORMAT}"`);
    if (v.version !== VERSION) throw bad(`version ${JSON.stringify(v.version)} is not supported (this deepvision reads version ${VERSION})`);
    if (typeof v.minCount !== 'number' || !Number.isSafeInteger(v.minCount) || v.minCount < 1) throw bad('minCount must be a whole number >= 1');
    const tokens = v.tokens;
    if (!Array.isArray(tokens)) throw bad('tokens must be an array of strings');
    if (tokens.length > MAX_WORDS + SPECIAL_TOKENS.length) throw bad(`${tokens.length} tokens, more than the ${MAX_WORDS} words allowed`);
    if (tokens.length <= SPECIAL_TOKENS.length) throw bad('it has no words');
    SPECIAL_TOKENS.forEach((s, i) => {
      if (tokens[i] !== s) throw bad(`token ${i} must be ${s}, found ${JSON.stringify(tokens[i])}`);
    });
    const seen = new Set<string>();
    for (let i = SPECIAL_TOKENS.length; i < tokens.length; i++) {
      const t: unknown = tokens[i];
      if (typeof t !== 'string' || !isToken(t)) throw bad(`token ${i} (${(JSON.stringify(t) as string | undefined)?.slice(0, 40)}) is not a word of lower-case letters`);
      if (seen.has(t)) throw bad(`'${t}' appears twice`);
      seen.add(t);
    }
    return new Vocabulary(tokens as string[], v.minCount);
  }

  /** fromJSON on the text of a vocabulary file. */
  static parse(text: string): Vocabulary {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (err) {
      throw new VocabularyError(`not a deepvision vocabulary: not valid JSON (${(err as Error).message})`);
    }
    return Vocabulary.fromJSON(value);
  }
}
