// The weight gradient of a dense (group 1) convolution, computed from its input and output gradient (the Node
// trainer's CPU fast path: src/passes/external-weight-grads.ts takes it out of the training session).
#pragma once

#include <node_api.h>

namespace deepvision {

// convWeightGrad(x, dy, dw, geometry: Int32Array [N, C, H, W, M, OH, OW, kH, kW, strideH, strideW, padTop, padLeft,
// dilationH, dilationW], threads): writes dW [M, C, kH, kW].
napi_value ConvWeightGrad(napi_env env, napi_callback_info info);

}  // namespace deepvision
