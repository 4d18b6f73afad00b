/**
 * Caption tokenization, as the common captioning reference preprocessing does it: lower case, every run of
 * characters other than the letters a-z becomes one space, split on spaces. "A dog's T-shirt, 2 cats." gives
 * ['a', 'dog', 's', 't', 'shirt', 'cats'].
 *
 * Runs of non-letters become a space rather than nothing, so that "man,standing" (COCO has such captions) stays two
 * words. ASCII letters only, as the reference: Flickr8k and COCO captions are ASCII, and a vocabulary read back from
 * a model file can then be checked word by word (see Vocabulary.fromJSON).
 */
export function tokenize(text: string): string[] {
  return text.toLowerCase().split(/[^a-z]+/).filter((w) => w !== '');
}

/** Whether `word` is one token as tokenize() makes them (a non-empty run of a-z). */
export function isToken(word: string): boolean {
  return /^[a-z]+$/.test(word);
}
