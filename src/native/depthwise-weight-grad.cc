// dW[c, kh, kw] = sum over n, oh, ow of x[n, c, oh*sH + kh*dH - padTop, ow*sW + kw*dW - padLeft] * dY[n, c, oh, ow]:
// one read of x and dY, where standard ONNX writes an im2col of x kH*kW times over (src/autodiff/rules/conv.ts).
//
// Each (image, channel) plane is first copied into small buffers with one row stride: x zero-padded and split by
// row and column phase (row = oh * sH + phase, the same for columns), dY with zeros after each row. Every tap is
// then one dot product of two contiguous runs, the whole plane long, with no bounds and no tails to handle (a
// tap that would read padding reads zeros, a column after the row's end meets a zero of dY), and the taps share
// each load of dY. The sums run in kLanes float lanes (lane = position in the run mod kLanes), flushed into double
// every kFlushChunks steps and at the end of each plane. Channels are split between threads, and each channel's
// sums run in the same order on any thread count and any CPU (no FMA contraction: -ffp-contract=off), so the
// result depends on neither.
// MobileNetV2's 17 depthwise layers at batch 32, 224 px, 2 threads: 140 ms with one dot product per tap and row
// (7x7 and 14x14 planes left most lanes idle), 87 ms this way (measured in alternation); writing the zeros around
// each plane once per call instead of once per plane then took it from 142 to 107 ms on a slower host.
#include "depthwise-weight-grad.h"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "plane-phases.h"
#include "weight-grad-arguments.h"

namespace deepvision {
namespace {

struct Geometry : PlaneGeometry {
  int64_t n, c;
};

// The sums go into double after this many steps (products per lane): float sums stay short.
constexpr int64_t kFlushChunks = 64;

// The phase planes, and dY's rows at the same stride: row r starts at r * stride. Tap t reads its phase plane from
// tapStart[t], so that position q of the run pairs x at output position q with dY at q.
struct Layout : PhaseLayout {
  int64_t run;
};

Layout layoutOf(const Geometry& g) {
  // Slack for the longest offset plus the run rounded up: every read stays inside the buffer.
  Layout l{phaseLayoutOf(g, kLanes), 0};
  l.run = (g.oh * l.stride + kLanes - 1) / kLanes * kLanes;
  return l;
}

// Copies plane x [h, w] into its phase planes and dY [oh, ow] into rows of the layout's stride (each row's tail
// and the slack after the run stay zero, as the buffers were created).
DEEPVISION_INLINE void spread(const Geometry& g, const Layout& l, const float* x, const float* dy, float* phases, float* dyRows) {
  spreadPlane(g, l, x, phases);
  for (int64_t r = 0; r < g.oh; r++) std::memcpy(dyRows + r * l.stride, dy + r * g.ow, static_cast<size_t>(g.ow) * sizeof(float));
}

// acc[t] += the dot product of the run at phases + tapStart[t] with dyRows. TAPS > 0: the tap count known at
// compile time (the lanes stay in registers); 0: any count, lanes in `lanes`.
template <int64_t TAPS>
DEEPVISION_INLINE void dotTaps(const Layout& l, const float* phases, const float* dyRows, double* acc, float* lanes) {
  const int64_t taps = TAPS > 0 ? TAPS : static_cast<int64_t>(l.tapStart.size());
  const auto flush = [&](auto lane) {
    for (int64_t t = 0; t < taps; t++) {
      const Lanes v = lane(t);
      float sum = 0;
      for (int64_t i = 0; i < kLanes; i++) sum += v[i];
      acc[t] += sum;
    }
  };
  for (int64_t begin = 0; begin < l.run; begin += kFlushChunks * kLanes) {
    const int64_t end = std::min(l.run, begin + kFlushChunks * kLanes);
    if constexpr (TAPS > 0) {
      const float* x[TAPS];
      Lanes a[TAPS];
      for (int64_t t = 0; t < TAPS; t++) x[t] = phases + l.tapStart[t], a[t] = Lanes{};
      for (int64_t q = begin; q < end; q += kLanes) {
        const Lanes d = load(dyRows + q);
        for (int64_t t = 0; t < TAPS; t++) a[t] += load(x[t] + q) * d;
      }
      flush([&](int64_t t) { return a[t]; });
    } else {
      std::fill_n(lanes, taps * kLanes, 0.0f);
      for (int64_t q = begin; q < end; q += kLanes) {
        const Lanes d = load(dyRows + q);
        for (int64_t t = 0; t < taps; t++) store(lanes + t * kLanes, load(lanes + t * kLanes) + load(phases + l.tapStart[t] + q) * d);
      }
      flush([&](int64_t t) { return load(lanes + t * kLanes); });
    }
  }
}

template <int64_t TAPS>
DEEPVISION_INLINE void channels(const Geometry& g, const float* x, const float* dy, float* dw, int64_t c0, int64_t c1) {
  const Layout l = layoutOf(g);
  const size_t taps = l.tapStart.size();
  std::vector<double> acc(taps);
  // Zero-filled once: spread() writes the same positions for every plane and leaves the zeros around them.
  std::vector<float> phases(static_cast<size_t>(l.planeSize()));
  std::vector<float> dyRows(static_cast<size_t>(l.run));
  std::vector<float> lanes(taps * kLanes);
  for (int64_t c = c0; c < c1; c++) {
    std::fill(acc.begin(), acc.end(), 0.0);
    for (int64_t n = 0; n < g.n; n++) {
      spread(g, l, x + (n * g.c + c) * g.h * g.w, dy + (n * g.c + c) * g.oh * g.ow, phases.data(), dyRows.data());
      dotTaps<TAPS>(l, phases.data(), dyRows.data(), acc.data(), lanes.data());
    }
    for (size_t k = 0; k < taps; k++) dw[static_cast<size_t>(c) * taps + k] = static_cast<float>(acc[k]);
  }
}

// The x86-64 baseline and AVX2 (no FMA: the products round as the graph's do), chosen once per call.
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
__attribute__((target_clones("avx2", "default")))
#endif
void channelRange(const Geometry& g, const float* x, const float* dy, float* dw, int64_t c0, int64_t c1) {
  if (g.kh * g.kw == 9) channels<9>(g, x, dy, dw, c0, c1);
  else channels<0>(g, x, dy, dw, c0, c1);
}

}  // namespace

napi_value DepthwiseWeightGrad(napi_env env, napi_callback_info info) {
  WeightGradArguments a;
  if (!readWeightGradArguments(env, info, "depthwiseWeightGrad", 14, &a)) return nullptr;
  const int32_t* v = a.geometry;
  const Geometry g{{v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9], v[10], v[11], v[12], v[13]}, v[0], v[1]};
  if (!validGeometry(env, g, g.n >= 0 && g.c > 0) || !validSizes(env, a, g.n * g.c * g.h * g.w, g.n * g.c * g.oh * g.ow, g.c * g.kh * g.kw)) return nullptr;
  float* x = a.x;
  float* dy = a.dy;
  float* dw = a.dw;
  const int64_t workers = std::min<int64_t>(threadCount(env, a.threads), g.c);
  std::vector<std::thread> pool;
  for (int64_t t = 1; t < workers; t++) pool.emplace_back(channelRange, std::cref(g), x, dy, dw, g.c * t / workers, g.c * (t + 1) / workers);
  channelRange(g, x, dy, dw, 0, g.c / workers);
  for (auto& t : pool) t.join();
  return nullptr;
}

}  // namespace deepvision
