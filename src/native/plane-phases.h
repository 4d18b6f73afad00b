// A convolution's input plane laid out so that every kernel tap reads one contiguous run: shared by the native
// weight-gradient kernels (depthwise-weight-grad.cc, conv-weight-grad.cc).
//
// The plane x [h, w] is copied zero-padded and split by row and column phase (row = oh * sH + phase, the same for
// columns) into sH * sW phase planes with one row stride. Tap t then reads x at output position (oh, ow) from
// tapStart[t] + oh * stride + ow, with no bounds to check: a tap that would read padding reads zeros.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

namespace deepvision {

// Inlined into every target-specific build of the kernels that use it, so that each runs its own instruction set.
#define DEEPVISION_INLINE inline __attribute__((always_inline))

// One plane's convolution: input h x w, output oh x ow, kernel kh x kw, strides, top and left pads, dilations.
struct PlaneGeometry {
  int64_t h, w, oh, ow, kh, kw, sh, sw, pt, pl, dh, dw;
};

// Where a plane's phase planes put things. A phase plane holds padded x at rows phaseRow + k * sH and columns
// phaseColumn + m * sW, at k * stride + m.
struct PhaseLayout {
  int64_t stride, phaseRows, phaseSize, phaseCount;
  std::vector<int64_t> tapStart;
  // The floats of one plane's phase planes together.
  int64_t planeSize() const { return phaseCount * phaseSize; }
};

// `slack` floats after each phase plane's last row: room for reads that run past it by up to that many.
inline PhaseLayout phaseLayoutOf(const PlaneGeometry& g, int64_t slack) {
  PhaseLayout l;
  l.stride = g.ow + ((g.kw - 1) * g.dw) / g.sw;
  l.phaseRows = g.oh + ((g.kh - 1) * g.dh) / g.sh;
  l.phaseSize = (l.phaseRows + 1) * l.stride + slack;
  l.phaseCount = g.sh * g.sw;
  for (int64_t i = 0; i < g.kh; i++) {
    for (int64_t j = 0; j < g.kw; j++) {
      const int64_t phase = ((i * g.dh) % g.sh) * g.sw + (j * g.dw) % g.sw;
      l.tapStart.push_back(phase * l.phaseSize + ((i * g.dh) / g.sh) * l.stride + (j * g.dw) / g.sw);
    }
  }
  return l;
}

// Copies plane x [h, w] into its phase planes. Only positions inside the image are written, the same ones for
// every plane, so the zeros around them (padding, slack) stay as the buffer was created.
DEEPVISION_INLINE void spreadPlane(const PlaneGeometry& g, const PhaseLayout& l, const float* x, float* phases) {
  for (int64_t a = 0; a < g.sh; a++) {
    for (int64_t b = 0; b < g.sw; b++) {
      float* plane = phases + (a * g.sw + b) * l.phaseSize;
      // Columns m * sW + b - pl inside [0, w): m in [lo, hi).
      const int64_t first = g.pl - b;
      const int64_t lo = std::min(l.stride, first <= 0 ? 0 : (first + g.sw - 1) / g.sw);
      const int64_t last = g.w - 1 + first;  // m * sW <= last; negative where no column of this phase is inside
      const int64_t hi = last < 0 ? lo : std::max(lo, std::min(l.stride, last / g.sw + 1));
      for (int64_t k = 0; k < l.phaseRows; k++) {
        const int64_t row = k * g.sh + a - g.pt;
        if (row < 0 || row >= g.h) continue;
        float* out = plane + k * l.stride;
        const float* in = x + row * g.w;
        if (g.sw == 1) std::memcpy(out + lo, in + lo - first, static_cast<size_t>(hi - lo) * sizeof(float));
        else for (int64_t m = lo; m < hi; m++) out[m] = in[m * g.sw - first];
      }
    }
  }
}

// Eight floats as one value (GCC's vector extension: two SSE registers on the x86-64 baseline, one with AVX2),
// read and written at any address through UnalignedLanes.
constexpr int64_t kLanes = 8;
typedef float Lanes __attribute__((vector_size(kLanes * sizeof(float))));
typedef float UnalignedLanes __attribute__((vector_size(kLanes * sizeof(float)), aligned(alignof(float))));

// GCC warns that passing 32-byte vectors by value without AVX changes the calling convention; these helpers are
// always inlined, so no call ever crosses that boundary.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wpsabi"
#endif

DEEPVISION_INLINE Lanes load(const float* p) {
  return *reinterpret_cast<const UnalignedLanes*>(p);
}

DEEPVISION_INLINE void store(float* p, const Lanes& v) {
  *reinterpret_cast<UnalignedLanes*>(p) = v;
}

}  // namespace deepvision
