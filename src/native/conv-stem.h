// A network's first block, Conv -> [training-mode BatchNormalization] -> ReLU -> 2x2 MaxPool, run natively around
// the training session (the Node trainer's CPU fast path: src/passes/cut-conv-stem.ts cuts it out of the graph).
#pragma once

#include <node_api.h>

namespace deepvision {

// stemForward(floats, ties, geometry, settings, threads). floats: [x, w, bias, gamma, beta, runningMean, runningVar,
// z, pooled, mean, invstd, runningMeanOut, runningVarOut]; the first seven are read, the rest written. ties
// (Uint8Array, one per pooled cell): which cells of the window equal its maximum (bit 2 * row + column). geometry:
// Int32Array [N, C, H, W, M, kH, kW, padTop, padLeft, padBottom, padRight]; settings: Float32Array [epsilon, momentum,
// normalize] (normalize 0: no batch norm, the ReLU reads z; mean and invstd come out 0 and 1).
napi_value StemForward(napi_env env, napi_callback_info info);

// stemBackward(floats, ties, geometry, settings, threads). floats: [x, z, pooled, pooledGrad, gamma, mean, invstd,
// weightGrad, gammaGrad, betaGrad]; the first seven are read, the rest written (weightGrad [M, C, kH, kW]).
// settings: Float32Array [normalize]; without batch norm betaGrad is the convolution bias's gradient.
napi_value StemBackward(napi_env env, napi_callback_info info);

}  // namespace deepvision
