/**
 * Ceilings on the amount of work a caption search does, whoever sets it: a flag, an exported card or a checkpoint's
 * config. A beam or a length from a file is data, and a huge one (a beam of a million, a length of 1e8) must be a
 * clear refusal, not gigabytes of hypotheses or a heap abort.
 */

/** The widest beam: search quality stops improving long before (beams of 3-10 are usual), and each is a row per step. */
export const MAX_BEAM = 100;

/**
 * The longest caption in tokens, <start> and <end> included: the longest captions of COCO and Flickr8k have about 50
 * words, and each token is one decoder step per beam (and a column of every caption in training).
 */
export const MAX_CAPTION_TOKENS = 256;

/** Why a beam width cannot be searched with a vocabulary of `vocabularySize` tokens, or undefined if it can. */
export function beamProblem(beam: number, vocabularySize?: number): string | undefined {
  if (!Number.isSafeInteger(beam) || beam < 1) return `the beam must be a positive integer, got ${beam}`;
  if (beam > MAX_BEAM) return `a beam of ${beam} is wider than the ${MAX_BEAM} searched at most`;
  // More beams than words cannot all differ after the first step.
  if (vocabularySize !== undefined && beam > vocabularySize) return `a beam of ${beam} is wider than the vocabulary (${vocabularySize} tokens)`;
  return undefined;
}

/** Why a caption length in tokens (<start> and <end> included) cannot be used, or undefined if it can. */
function captionTokensProblem(tokens: number): string | undefined {
  if (!Number.isSafeInteger(tokens) || tokens < 3) return `captions must have a whole number of tokens from 3 (<start>, a word, <end>) to ${MAX_CAPTION_TOKENS}, got ${tokens}`;
  if (tokens > MAX_CAPTION_TOKENS) return `captions of ${tokens} tokens are longer than the ${MAX_CAPTION_TOKENS} supported`;
  return undefined;
}

/**
 * Why a checkpoint's config `maxLength` (the tokens fed to the decoder: <start> and the words) cannot be used: its
 * captions have one more token, the <end>.
 */
export function fedTokensProblem(fed: number): string | undefined {
  return captionTokensProblem(fed + 1);
}
