import type * as ort from 'onnxruntime-node';

/** Expects two runs of the same graph outputs to agree: per output, the largest difference within `tolerance` of its largest magnitude. */
export function expectSameOutputs(actual: ort.InferenceSession.OnnxValueMapType, expected: ort.InferenceSession.OnnxValueMapType, tolerance = 1e-4): void {
  expect(Object.keys(actual).sort()).toEqual(Object.keys(expected).sort());
  for (const name of Object.keys(expected)) {
    const e = expected[name]!.data as Float32Array;
    const a = actual[name]!.data as Float32Array;
    let scale = 1e-6;
    let worst = 0;
    e.forEach((v, i) => {
      scale = Math.max(scale, Math.abs(v));
      worst = Math.max(worst, Math.abs(v - a[i]!));
    });
    expect([name, worst / scale < tolerance]).toEqual([name, true]);
  }
}
