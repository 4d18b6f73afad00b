// The arguments both weight-gradient kernels take, (x, dy, dw, geometry, threads), read and checked the same way:
// every failure throws a JavaScript Error whose message names the argument, and returns false.
#pragma once

#include <node_api.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "node-api-arguments.h"
#include "plane-phases.h"

namespace deepvision {

struct WeightGradArguments {
  float* x = nullptr;
  float* dy = nullptr;
  float* dw = nullptr;
  size_t xn = 0, dyn = 0, dwn = 0;
  // `geometryLength` values, as the kernel documents them.
  const int32_t* geometry = nullptr;
  napi_value threads = nullptr;
};

inline bool readWeightGradArguments(napi_env env, napi_callback_info info, const char* name, size_t geometryLength, WeightGradArguments* a) {
  napi_value args[5];
  if (!callArguments(env, info, name, 5, args)) return false;
  if (!floatArray(env, args[0], "x", &a->x, &a->xn) || !floatArray(env, args[1], "dy", &a->dy, &a->dyn) || !floatArray(env, args[2], "dw", &a->dw, &a->dwn)) {
    return false;
  }
  bool isTyped = false;
  napi_typedarray_type type;
  size_t length = 0;
  void* raw = nullptr;
  if (napi_is_typedarray(env, args[3], &isTyped) != napi_ok || !isTyped
      || napi_get_typedarray_info(env, args[3], &type, &length, &raw, nullptr, nullptr) != napi_ok || type != napi_int32_array || length != geometryLength) {
    return fail(env, "geometry is not an Int32Array of " + std::to_string(geometryLength) + " values");
  }
  a->geometry = static_cast<const int32_t*>(raw);
  a->threads = args[4];
  return true;
}

// The plane's sizes, strides and dilations at least 1 and its pads not negative, with `counts` (the batch, channel
// counts) valid as the kernel reads them.
inline bool validGeometry(napi_env env, const PlaneGeometry& g, bool counts) {
  const bool positive = counts && g.h > 0 && g.w > 0 && g.oh > 0 && g.ow > 0 && g.kh > 0 && g.kw > 0 && g.sh > 0 && g.sw > 0 && g.dh > 0 && g.dw > 0
                        && g.pt >= 0 && g.pl >= 0;
  return positive || fail(env, "geometry has a size, stride or dilation below 1, or a negative pad");
}

// Each array as long as the geometry needs (in int64 from int32 factors: no product overflows for arrays that fit in
// memory), and dw sharing no memory with x or dy.
inline bool validSizes(napi_env env, const WeightGradArguments& a, int64_t x, int64_t dy, int64_t dw) {
  const auto expect = [&](const char* what, size_t got, int64_t want) {
    return static_cast<int64_t>(got) == want || fail(env, std::string(what) + " has " + std::to_string(got) + " values, the geometry needs " + std::to_string(want));
  };
  if (!expect("x", a.xn, x) || !expect("dy", a.dyn, dy) || !expect("dw", a.dwn, dw)) return false;
  const auto overlaps = [](const float* p, size_t pn, const float* q, size_t qn) { return p < q + qn && q < p + pn; };
  return !(overlaps(a.dw, a.dwn, a.x, a.xn) || overlaps(a.dw, a.dwn, a.dy, a.dyn)) || fail(env, "dw shares memory with x or dy");
}

}  // namespace deepvision
