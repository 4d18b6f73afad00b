/** The largest model input side in pixels: 16 times ImageNet's 224, and a 3 x 4096 x 4096 input is 200 MB of floats. */
export const MAX_INPUT_SIDE = 4096;

/** Why a model's input side cannot be used, or undefined if it can (a flag, a --set, a graph or a backbone's declared size). */
export function inputSideProblem(side: number): string | undefined {
  if (!Number.isSafeInteger(side) || side < 1) return `an input of ${side} pixels is not a positive whole number`;
  if (side > MAX_INPUT_SIDE) return `an input of ${side} pixels is larger than the ${MAX_INPUT_SIDE} supported`;
  return undefined;
}
