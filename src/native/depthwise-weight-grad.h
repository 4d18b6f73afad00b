// The weight gradient of a depthwise convolution, computed from its input and output gradient (the Node trainer's
// CPU fast path: src/passes/external-weight-grads.ts takes it out of the training session).
#pragma once

#include <node_api.h>

namespace deepvision {

// depthwiseWeightGrad(x, dy, dw, geometry: Int32Array [N, C, H, W, OH, OW, kH, kW, strideH, strideW, padTop,
// padLeft, dilationH, dilationW], threads): writes dW [C, 1, kH, kW].
napi_value DepthwiseWeightGrad(napi_env env, napi_callback_info info);

}  // namespace deepvision
