// dW[c, kh, kw] = sum over n, oh, ow of x[n, c, oh*sH + kh*dH - padTop, ow*sW + kw*dW - padLeft] * dY[n, c, oh, ow]:
// one read of x and dY, where standard ONNX writes an im2col of x kH*kW times over (src/autodiff/rules/conv.ts).
// Channels are split between threads; each channel's sums run in the same order on any thread count (rows in
// float lanes, rows added in double), so the result does not depend on the threads.
#include "depthwise-weight-grad.h"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "node-api-arguments.h"

namespace deepvision {
namespace {

struct Geometry {
  int64_t n, c, h, w, oh, ow, kh, kw, sh, sw, pt, pl, dh, dw;
};

// The dot product of a[0, n) and b[0, n), in 8 float lanes (vectorized for SSE, and AVX2 where the CPU has it:
// the lanes are the same either way, so the result does not depend on the CPU) plus a scalar tail.
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
__attribute__((target_clones("avx2", "default")))
#endif
float dot(const float* a, const float* b, int64_t n) {
  constexpr int kLanes = 8;
  float lanes[kLanes] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (int l = 0; l < kLanes; l++) lanes[l] += a[i + l] * b[i + l];
  }
  float sum = 0;
  for (; i < n; i++) sum += a[i] * b[i];
  for (int l = 0; l < kLanes; l++) sum += lanes[l];
  return sum;
}

int64_t floorDiv(int64_t a, int64_t b) {
  return a >= 0 ? a / b : -((-a + b - 1) / b);
}

void channels(const Geometry& g, const float* x, const float* dy, float* dw, int64_t c0, int64_t c1) {
  const size_t taps = static_cast<size_t>(g.kh * g.kw);
  std::vector<double> acc(taps);
  // An input row split by column phase (column = ow * stride + phase): every tap then reads it contiguously.
  std::vector<float> phases(static_cast<size_t>(g.sw * (g.w / g.sw + 1)));
  const int64_t phaseLength = g.w / g.sw + 1;
  // Per tap (column offset j * dilation - pad): its phase, its first column in that phase, and the range of output
  // columns that read inside the image (the others read padding, zeros).
  std::vector<int64_t> tapPhase(static_cast<size_t>(g.kw)), tapBase(static_cast<size_t>(g.kw)), tapLo(static_cast<size_t>(g.kw)), tapHi(static_cast<size_t>(g.kw));
  for (int64_t j = 0; j < g.kw; j++) {
    const int64_t offset = j * g.dw - g.pl;
    const int64_t base = floorDiv(offset, g.sw);
    tapPhase[j] = offset - base * g.sw;
    tapBase[j] = base;
    int64_t lo = 0;
    int64_t hi = g.ow;
    while (lo < hi && lo * g.sw + offset < 0) lo++;
    while (hi > lo && (hi - 1) * g.sw + offset >= g.w) hi--;
    tapLo[j] = lo;
    tapHi[j] = hi;
  }
  for (int64_t c = c0; c < c1; c++) {
    std::fill(acc.begin(), acc.end(), 0.0);
    for (int64_t n = 0; n < g.n; n++) {
      const float* xPlane = x + (n * g.c + c) * g.h * g.w;
      const float* dyPlane = dy + (n * g.c + c) * g.oh * g.ow;
      for (int64_t r = 0; r < g.oh; r++) {
        const float* dyRow = dyPlane + r * g.ow;
        for (int64_t i = 0; i < g.kh; i++) {
          const int64_t row = r * g.sh + i * g.dh - g.pt;
          if (row < 0 || row >= g.h) continue;
          const float* xRow = xPlane + row * g.w;
          if (g.sw > 1) {
            for (int64_t p = 0; p < g.sw; p++) {
              float* phase = phases.data() + p * phaseLength;
              for (int64_t k = 0, col = p; col < g.w; k++, col += g.sw) phase[k] = xRow[col];
            }
          }
          for (int64_t j = 0; j < g.kw; j++) {
            const int64_t lo = tapLo[j];
            const int64_t hi = tapHi[j];
            if (lo >= hi) continue;
            // Output column lo reads column lo + base of the tap's phase (lo is where that index turns >= 0).
            const int64_t first = lo + tapBase[j];
            const float* xs = g.sw > 1 ? phases.data() + tapPhase[j] * phaseLength + first : xRow + first;
            acc[static_cast<size_t>(i * g.kw + j)] += dot(xs, dyRow + lo, hi - lo);
          }
        }
      }
    }
    for (size_t k = 0; k < taps; k++) dw[static_cast<size_t>(c) * taps + k] = static_cast<float>(acc[k]);
  }
}

bool readGeometry(napi_env env, napi_value value, Geometry* g) {
  bool isTyped = false;
  napi_typedarray_type type;
  size_t length = 0;
  void* raw = nullptr;
  if (napi_is_typedarray(env, value, &isTyped) != napi_ok || !isTyped
      || napi_get_typedarray_info(env, value, &type, &length, &raw, nullptr, nullptr) != napi_ok || type != napi_int32_array || length != 14) {
    return fail(env, "geometry is not an Int32Array of 14 values");
  }
  const int32_t* v = static_cast<const int32_t*>(raw);
  *g = {v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9], v[10], v[11], v[12], v[13]};
  const bool positive = g->n >= 0 && g->c > 0 && g->h > 0 && g->w > 0 && g->oh > 0 && g->ow > 0 && g->kh > 0 && g->kw > 0
                        && g->sh > 0 && g->sw > 0 && g->dh > 0 && g->dw > 0 && g->pt >= 0 && g->pl >= 0;
  return positive || fail(env, "geometry has a size, stride or dilation below 1, or a negative pad");
}

bool overlaps(const float* a, size_t an, const float* b, size_t bn) {
  return a < b + bn && b < a + an;
}

}  // namespace

napi_value DepthwiseWeightGrad(napi_env env, napi_callback_info info) {
  napi_value args[5];
  if (!callArguments(env, info, "depthwiseWeightGrad", 5, args)) return nullptr;
  float* x = nullptr;
  float* dy = nullptr;
  float* dw = nullptr;
  size_t xn = 0, dyn = 0, dwn = 0;
  Geometry g{};
  if (!floatArray(env, args[0], "x", &x, &xn) || !floatArray(env, args[1], "dy", &dy, &dyn) || !floatArray(env, args[2], "dw", &dw, &dwn)
      || !readGeometry(env, args[3], &g)) {
    return nullptr;
  }
  // Sizes in int64 from int32 factors: no product below overflows for arrays that fit in memory.
  const auto expect = [&](const char* what, size_t got, int64_t want) {
    return static_cast<int64_t>(got) == want || fail(env, std::string(what) + " has " + std::to_string(got) + " values, the geometry needs " + std::to_string(want));
  };
  if (!expect("x", xn, g.n * g.c * g.h * g.w) || !expect("dy", dyn, g.n * g.c * g.oh * g.ow) || !expect("dw", dwn, g.c * g.kh * g.kw)) return nullptr;
  if (overlaps(dw, dwn, x, xn) || overlaps(dw, dwn, dy, dyn)) return fail(env, "dw shares memory with x or dy"), nullptr;
  const int64_t workers = std::min<int64_t>(threadCount(env, args[4]), g.c);
  std::vector<std::thread> pool;
  for (int64_t t = 1; t < workers; t++) pool.emplace_back(channels, std::cref(g), x, dy, dw, g.c * t / workers, g.c * (t + 1) / workers);
  channels(g, x, dy, dw, 0, g.c / workers);
  for (auto& t : pool) t.join();
  return nullptr;
}

}  // namespace deepvision
