// A first block Conv (stride 1) -> BatchNormalization (training mode; optional) -> ReLU -> MaxPool 2x2 stride 2,
// forward and backward, outside the training session. In standard ONNX the block's batch norm, mask and pooling
// gradients are about twenty separate passes over its largest activation (the seed CNN's first block: 220 ms of a
// 930 ms step). Here the forward is one convolution pass (with the batch statistics' per-plane sums) and one
// normalize + ReLU + pool pass that records each window's tied maxima; the backward is two passes, the batch-norm
// sums over the pooled gradient's windows, then dZ plane by plane, summed at once into the weight gradient (dZ is
// never stored whole).
//
// The formulas are the training graph's (src/autodiff/rules/normalization.ts, pool.ts; passes/fuse-relu-mask.ts):
//   forward:  y = relu(z * a + b) with a = gamma * invstd, b = beta - mean * a; the pool's maximum P, and its ties;
//   backward: a window's share S = (dP / 4) / (ties / 4) where P > 0, given to each tied cell (dY, else 0);
//             xhat = z * invstd - mean * invstd; dGamma = sum(dY * xhat), dBeta = sum(dY);
//             dZ = dY * k - (xhat * (k * dGamma / n) + k * dBeta / n), k = gamma * invstd.
// Sums run per (image, channel) plane in double and are added over the images in order, so no result depends on
// the thread count. With batch norm the convolution's bias has no gradient (the graph emits zeros); without it, a = 1,
// b = 0, dZ = dY, and the bias's gradient is sum(dY).
#include "conv-stem.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "cpu-isa.h"
#include "node-api-arguments.h"
#include "plane-phases.h"

namespace deepvision {
namespace {

struct StemGeometry {
  int64_t n, c, h, w, m, kh, kw, pt, pl, pb, pr, oh, ow;
  int64_t plane() const { return oh * ow; }
  int64_t pooled() const { return (oh / 2) * (ow / 2); }
  // The convolution of one plane, as plane-phases.h takes it.
  PlaneGeometry convolution() const { return PlaneGeometry{h, w, oh, ow, kh, kw, 1, 1, pt, pl, 1, 1}; }
};

template <typename Run>
void parallel(int64_t parts, int threads, const Run& run) {
  const int64_t workers = std::max<int64_t>(1, std::min<int64_t>(threads, parts));
  std::vector<std::thread> pool;
  for (int64_t t = 1; t < workers; t++) pool.emplace_back(run, parts * t / workers, parts * (t + 1) / workers);
  run(0, parts / workers);
  for (auto& t : pool) t.join();
}

// Each pass has an AVX2 build (with FMA where the graph's sums allow it) and a baseline one for any x86-64 or arm64
// CPU; the AVX2 ones are plain functions elsewhere.
#if defined(__GNUC__) && defined(__x86_64__)
#define DEEPVISION_AVX2 __attribute__((target("avx2,fma")))
#define DEEPVISION_AVX2_FMA __attribute__((target("avx2,fma"), optimize("fp-contract=fast")))
#else
#define DEEPVISION_AVX2
#define DEEPVISION_AVX2_FMA
#endif

// The AVX2 build where the CPU runs it (cpu-isa.h), else the baseline one.
template <typename Pass>
Pass forThisCpu(Pass avx2, Pass baseline) {
  return widestIsa() == Isa::kBaseline ? baseline : avx2;
}

// ---- the convolution, z = conv(x, w) + bias, image by image ----

struct ConvWork {
  StemGeometry g;
  PlaneGeometry plane;
  PhaseLayout l;
  const float* x;
  const float* w;
  const float* bias;
  float* z;
  // [n][m][2]: each plane's sum and sum of squares.
  double* planes;
};

// Output channels [m0, m0 + MB) of image n from its zero-padded planes: each output row in blocks of 16, 8 and 1
// columns, summed over (channel, tap) with one broadcast weight per output channel.
template <int MB>
DEEPVISION_INLINE void convChannels(const ConvWork& k, const float* phases, int64_t n, int64_t m0) {
  const StemGeometry& g = k.g;
  const int64_t taps = g.kh * g.kw;
  const float* wb = k.w + m0 * g.c * taps;
  float* zb = k.z + (n * g.m + m0) * g.plane();
  const int64_t* tapStart = k.l.tapStart.data();
  // The batch statistics' sums, per row in float lanes, then per plane in double.
  double planeSum[MB] = {}, planeSquares[MB] = {};
  for (int64_t oh = 0; oh < g.oh; oh++) {
    Lanes rowSum[MB], rowSquares[MB];
    float tailSum[MB] = {}, tailSquares[MB] = {};
    for (int j = 0; j < MB; j++) rowSum[j] = rowSquares[j] = Lanes{};
    int64_t ow = 0;
    for (; ow + 2 * kLanes <= g.ow; ow += 2 * kLanes) {
      Lanes acc[MB][2];
      for (int j = 0; j < MB; j++) acc[j][0] = acc[j][1] = Lanes{} + k.bias[m0 + j];
      for (int64_t c = 0; c < g.c; c++) {
        const float* row = phases + c * k.l.planeSize() + oh * k.l.stride + ow;
        for (int64_t t = 0; t < taps; t++) {
          const Lanes a = load(row + tapStart[t]), b = load(row + tapStart[t] + kLanes);
          for (int j = 0; j < MB; j++) {
            const float wv = wb[(j * g.c + c) * taps + t];
            acc[j][0] += a * wv;
            acc[j][1] += b * wv;
          }
        }
      }
      for (int j = 0; j < MB; j++) {
        store(zb + j * g.plane() + oh * g.ow + ow, acc[j][0]);
        store(zb + j * g.plane() + oh * g.ow + ow + kLanes, acc[j][1]);
        rowSum[j] += acc[j][0] + acc[j][1];
        rowSquares[j] += acc[j][0] * acc[j][0] + acc[j][1] * acc[j][1];
      }
    }
    for (; ow + kLanes <= g.ow; ow += kLanes) {
      Lanes acc[MB];
      for (int j = 0; j < MB; j++) acc[j] = Lanes{} + k.bias[m0 + j];
      for (int64_t c = 0; c < g.c; c++) {
        const float* row = phases + c * k.l.planeSize() + oh * k.l.stride + ow;
        for (int64_t t = 0; t < taps; t++) {
          const Lanes a = load(row + tapStart[t]);
          for (int j = 0; j < MB; j++) acc[j] += a * wb[(j * g.c + c) * taps + t];
        }
      }
      for (int j = 0; j < MB; j++) {
        store(zb + j * g.plane() + oh * g.ow + ow, acc[j]);
        rowSum[j] += acc[j];
        rowSquares[j] += acc[j] * acc[j];
      }
    }
    for (; ow < g.ow; ow++) {
      for (int j = 0; j < MB; j++) {
        float acc = k.bias[m0 + j];
        for (int64_t c = 0; c < g.c; c++) {
          const float* row = phases + c * k.l.planeSize() + oh * k.l.stride + ow;
          for (int64_t t = 0; t < taps; t++) acc += row[tapStart[t]] * wb[(j * g.c + c) * taps + t];
        }
        zb[j * g.plane() + oh * g.ow + ow] = acc;
        tailSum[j] += acc;
        tailSquares[j] += acc * acc;
      }
    }
    for (int j = 0; j < MB; j++) {
      double s = tailSum[j], ss = tailSquares[j];
      for (int64_t i = 0; i < kLanes; i++) {
        s += rowSum[j][i];
        ss += rowSquares[j][i];
      }
      planeSum[j] += s;
      planeSquares[j] += ss;
    }
  }
  for (int j = 0; j < MB; j++) {
    k.planes[2 * (n * g.m + m0 + j)] = planeSum[j];
    k.planes[2 * (n * g.m + m0 + j) + 1] = planeSquares[j];
  }
}

template <int MB>
DEEPVISION_INLINE void convImages(const ConvWork& k, int64_t n0, int64_t n1) {
  // Zero once: spreadPlane writes the same positions for every image, so the padding stays zero.
  std::vector<float> phases(static_cast<size_t>(k.g.c * k.l.planeSize()));
  for (int64_t n = n0; n < n1; n++) {
    for (int64_t c = 0; c < k.g.c; c++) {
      spreadPlane(k.plane, k.l, k.x + (n * k.g.c + c) * k.g.h * k.g.w, phases.data() + c * k.l.planeSize());
    }
    int64_t m = 0;
    for (; m + MB <= k.g.m; m += MB) convChannels<MB>(k, phases.data(), n, m);
    for (; m < k.g.m; m++) convChannels<1>(k, phases.data(), n, m);
  }
}

DEEPVISION_AVX2_FMA void convImagesAvx2(const ConvWork& k, int64_t n0, int64_t n1) {
  convImages<4>(k, n0, n1);
}
void convImagesBaseline(const ConvWork& k, int64_t n0, int64_t n1) {
  convImages<2>(k, n0, n1);
}

// ---- normalize, ReLU and pool ----

struct PoolWork {
  StemGeometry g;
  const float* scale;
  const float* shift;
  const float* z;
  float* pooled;
  uint8_t* ties;
};

typedef int32_t Ints __attribute__((vector_size(kLanes * sizeof(int32_t))));

DEEPVISION_INLINE Lanes maxLanes(const Lanes& a, const Lanes& b) {
  return a > b ? a : b;
}

// The cells of eight windows from their two rows: top left, top right, bottom left, bottom right.
DEEPVISION_INLINE void windowCells(const float* top, const float* bottom, Lanes cells[4]) {
  const Ints even = {0, 2, 4, 6, 8, 10, 12, 14}, odd = {1, 3, 5, 7, 9, 11, 13, 15};
  const Lanes t0 = load(top), t1 = load(top + kLanes), b0 = load(bottom), b1 = load(bottom + kLanes);
  cells[0] = __builtin_shuffle(t0, t1, even);
  cells[1] = __builtin_shuffle(t0, t1, odd);
  cells[2] = __builtin_shuffle(b0, b1, even);
  cells[3] = __builtin_shuffle(b0, b1, odd);
}

// One window's four cells (top left, top right, bottom left, bottom right) after normalize + ReLU: the maximum
// and the tie bits (bit 2 * row + column).
DEEPVISION_INLINE void poolWindow(float v0, float v1, float v2, float v3, float* top, uint8_t* tie) {
  const float t = std::max(std::max(v0, v1), std::max(v2, v3));
  *top = t;
  *tie = static_cast<uint8_t>((v0 == t) | (v1 == t) << 1 | (v2 == t) << 2 | (v3 == t) << 3);
}

// Planes [p0, p1): eight windows at a time.
DEEPVISION_INLINE void poolPlanes(const PoolWork& k, int64_t p0, int64_t p1) {
  const StemGeometry& g = k.g;
  const int64_t ph = g.oh / 2, pw = g.ow / 2;
  for (int64_t p = p0; p < p1; p++) {
    const int64_t c = p % g.m;
    const float a = k.scale[c], b = k.shift[c];
    const auto y = [&](float v) { return std::max(0.0f, v * a + b); };
    const auto yLanes = [&](const Lanes& v) { return maxLanes(v * a + b, Lanes{}); };
    const float* zp = k.z + p * g.plane();
    float* out = k.pooled + p * g.pooled();
    uint8_t* tie = k.ties + p * g.pooled();
    for (int64_t i = 0; i < ph; i++) {
      const float* r0 = zp + 2 * i * g.ow;
      const float* r1 = r0 + g.ow;
      int64_t j = 0;
      for (; j + kLanes <= pw; j += kLanes) {
        Lanes cells[4];
        windowCells(r0 + 2 * j, r1 + 2 * j, cells);
        const Lanes tl = yLanes(cells[0]), tr = yLanes(cells[1]), bl = yLanes(cells[2]), br = yLanes(cells[3]);
        const Lanes top = maxLanes(maxLanes(tl, tr), maxLanes(bl, br));
        const Ints bits = ((tl == top) & 1) | ((tr == top) & 2) | ((bl == top) & 4) | ((br == top) & 8);
        store(out + i * pw + j, top);
        for (int64_t l = 0; l < kLanes; l++) tie[i * pw + j + l] = static_cast<uint8_t>(bits[l]);
      }
      for (; j < pw; j++) poolWindow(y(r0[2 * j]), y(r0[2 * j + 1]), y(r1[2 * j]), y(r1[2 * j + 1]), out + i * pw + j, tie + i * pw + j);
    }
  }
}

DEEPVISION_AVX2 void poolPlanesAvx2(const PoolWork& k, int64_t p0, int64_t p1) {
  poolPlanes(k, p0, p1);
}
void poolPlanesBaseline(const PoolWork& k, int64_t p0, int64_t p1) {
  poolPlanes(k, p0, p1);
}

// ---- the backward's two passes ----

struct BackWork {
  StemGeometry g;
  const float* z;
  const float* pooled;
  const float* pooledGrad;
  const uint8_t* ties;
  const float* invstd;
  const float* xhatShift;
  // Pass 1 writes the per-plane sums [n][m][2]: sum(dY), sum(dY * xhat).
  double* planes;
  // Pass 2 reads the per-channel factors and x, and writes the weight gradient's per-plane sums [n][m][rows]
  // (rows = (c, tap)).
  const float* k;
  const float* xhatFactor;
  const float* offset;
  const float* x;
  PlaneGeometry plane;
  const PhaseLayout* l;
  double* planeWeights;
};

// A window's share for each tied cell where the ReLU passed its maximum, as the graph computes it.
DEEPVISION_INLINE float shareOf(float pooled, float grad, uint8_t t) {
  if (!(pooled > 0)) return 0.0f;
  const int count = (t & 1) + (t >> 1 & 1) + (t >> 2 & 1) + (t >> 3 & 1);
  return (grad * 0.25f) / (static_cast<float>(count) * 0.25f);
}

// The same for eight windows; and their tie bits as lanes.
DEEPVISION_INLINE Lanes shareLanes(const BackWork& k, int64_t at, Ints* bits) {
  Ints t;
  for (int64_t l = 0; l < kLanes; l++) t[l] = k.ties[at + l];
  *bits = t;
  const Ints count = (t & 1) + (t >> 1 & 1) + (t >> 2 & 1) + (t >> 3 & 1);
  const Lanes countF = __builtin_convertvector(count, Lanes);
  const Lanes share = (load(k.pooledGrad + at) * 0.25f) / (countF * 0.25f);
  return load(k.pooled + at) > 0 ? share : Lanes{};
}

// Per window cell: dY where its tie bit is set, else 0.
DEEPVISION_INLINE Lanes cellGrad(const Lanes& share, const Ints& bits, int bit) {
  return (bits & bit) != 0 ? share : Lanes{};
}

DEEPVISION_INLINE void reducePlanes(const BackWork& k, int64_t p0, int64_t p1) {
  const StemGeometry& g = k.g;
  const int64_t ph = g.oh / 2, pw = g.ow / 2;
  for (int64_t p = p0; p < p1; p++) {
    const int64_t c = p % g.m;
    const float s = k.invstd[c], t = k.xhatShift[c];
    const float* zp = k.z + p * g.plane();
    double sg = 0, sgx = 0;
    for (int64_t i = 0; i < ph; i++) {
      const float* r0 = zp + 2 * i * g.ow;
      const float* r1 = r0 + g.ow;
      Lanes rowG = {}, rowGX = {};
      float tailG = 0, tailGX = 0;
      int64_t j = 0;
      for (; j + kLanes <= pw; j += kLanes) {
        Ints bits;
        const Lanes share = shareLanes(k, p * g.pooled() + i * pw + j, &bits);
        Lanes cells[4];
        windowCells(r0 + 2 * j, r1 + 2 * j, cells);
        for (int cell = 0; cell < 4; cell++) {
          const Lanes dy = cellGrad(share, bits, 1 << cell);
          rowG += dy;
          rowGX += dy * (cells[cell] * s + t);
        }
      }
      for (; j < pw; j++) {
        const int64_t at = p * g.pooled() + i * pw + j;
        const float d = shareOf(k.pooled[at], k.pooledGrad[at], k.ties[at]);
        for (int cell = 0; cell < 4; cell++) {
          if (!(k.ties[at] >> cell & 1)) continue;
          tailG += d;
          tailGX += d * ((cell < 2 ? r0 : r1)[2 * j + cell % 2] * s + t);
        }
      }
      double rg = tailG, rgx = tailGX;
      for (int64_t l = 0; l < kLanes; l++) {
        rg += rowG[l];
        rgx += rowGX[l];
      }
      sg += rg;
      sgx += rgx;
    }
    k.planes[2 * p] = sg;
    k.planes[2 * p + 1] = sgx;
  }
}

// One plane's dZ (dzPlane) against its image's padded planes: sums[(c, tap)] = sum over positions of
// dZ * x[c] at the tap's offset, four (c, tap) rows at a time with two vector sums each, held in registers over
// the whole plane.
DEEPVISION_INLINE void weightSums(const BackWork& k, const float* phases, const float* dzPlane, double* sums) {
  const StemGeometry& g = k.g;
  const PhaseLayout& l = *k.l;
  const int64_t taps = g.kh * g.kw, rows = g.c * taps;
  constexpr int kRows = 4;
  for (int64_t r0 = 0; r0 < rows; r0 += kRows) {
    // Past the last row, repeat it (its sums are dropped).
    const float* x[kRows];
    for (int rr = 0; rr < kRows; rr++) {
      const int64_t r = std::min(r0 + rr, rows - 1);
      x[rr] = phases + (r / taps) * l.planeSize() + l.tapStart[static_cast<size_t>(r % taps)];
    }
    Lanes acc[kRows][2];
    float rest[kRows] = {};
    for (int rr = 0; rr < kRows; rr++) acc[rr][0] = acc[rr][1] = Lanes{};
    for (int64_t oh = 0; oh < g.oh; oh++) {
      const float* d = dzPlane + oh * g.ow;
      const int64_t row = oh * l.stride;
      int64_t q = 0;
      for (; q + 2 * kLanes <= g.ow; q += 2 * kLanes) {
        const Lanes d0 = load(d + q), d1 = load(d + q + kLanes);
        for (int rr = 0; rr < kRows; rr++) {
          acc[rr][0] += d0 * load(x[rr] + row + q);
          acc[rr][1] += d1 * load(x[rr] + row + q + kLanes);
        }
      }
      for (; q + kLanes <= g.ow; q += kLanes) {
        const Lanes d0 = load(d + q);
        for (int rr = 0; rr < kRows; rr++) acc[rr][0] += d0 * load(x[rr] + row + q);
      }
      for (; q < g.ow; q++) {
        for (int rr = 0; rr < kRows; rr++) rest[rr] += d[q] * x[rr][row + q];
      }
    }
    for (int rr = 0; rr < kRows && r0 + rr < rows; rr++) {
      double sum = rest[rr];
      for (int64_t lane = 0; lane < kLanes; lane++) sum += static_cast<double>(acc[rr][0][lane]) + acc[rr][1][lane];
      sums[r0 + rr] = sum;
    }
  }
}

// dZ of planes [p0, p1), each into a buffer the size of one plane, then summed into the weight gradient (dZ is
// never stored whole).
DEEPVISION_INLINE void gradPlanes(const BackWork& k, int64_t p0, int64_t p1) {
  const StemGeometry& g = k.g;
  const PhaseLayout& l = *k.l;
  const int64_t ph = g.oh / 2, pw = g.ow / 2, rows = g.c * g.kh * g.kw;
  const Ints low = {0, 8, 1, 9, 2, 10, 3, 11}, high = {4, 12, 5, 13, 6, 14, 7, 15};
  // Zeroed once: spreadPlane writes the same positions for every image.
  std::vector<float> phases(static_cast<size_t>(g.c * l.planeSize()));
  std::vector<float> dzPlane(static_cast<size_t>(g.plane()));
  int64_t image = -1;
  for (int64_t p = p0; p < p1; p++) {
    const int64_t n = p / g.m, c = p % g.m;
    if (n != image) {
      for (int64_t ch = 0; ch < g.c; ch++) spreadPlane(k.plane, l, k.x + (n * g.c + ch) * g.h * g.w, phases.data() + ch * l.planeSize());
      image = n;
    }
    const float s = k.invstd[c], t = k.xhatShift[c], kc = k.k[c], xf = k.xhatFactor[c], off = k.offset[c];
    const float* zp = k.z + p * g.plane();
    for (int64_t i = 0; i < ph; i++) {
      const float* r0 = zp + 2 * i * g.ow;
      const float* r1 = r0 + g.ow;
      float* o0 = dzPlane.data() + 2 * i * g.ow;
      float* o1 = o0 + g.ow;
      int64_t j = 0;
      for (; j + kLanes <= pw; j += kLanes) {
        Ints bits;
        const Lanes share = shareLanes(k, p * g.pooled() + i * pw + j, &bits);
        Lanes cells[4];
        windowCells(r0 + 2 * j, r1 + 2 * j, cells);
        Lanes d[4];
        for (int cell = 0; cell < 4; cell++) d[cell] = cellGrad(share, bits, 1 << cell) * kc - ((cells[cell] * s + t) * xf + off);
        store(o0 + 2 * j, __builtin_shuffle(d[0], d[1], low));
        store(o0 + 2 * j + kLanes, __builtin_shuffle(d[0], d[1], high));
        store(o1 + 2 * j, __builtin_shuffle(d[2], d[3], low));
        store(o1 + 2 * j + kLanes, __builtin_shuffle(d[2], d[3], high));
      }
      for (; j < pw; j++) {
        const int64_t at = p * g.pooled() + i * pw + j;
        const float share = shareOf(k.pooled[at], k.pooledGrad[at], k.ties[at]);
        for (int cell = 0; cell < 4; cell++) {
          const int64_t q = 2 * j + cell % 2;
          const float dy = (k.ties[at] >> cell & 1) ? share : 0.0f;
          (cell < 2 ? o0 : o1)[q] = dy * kc - (((cell < 2 ? r0 : r1)[q] * s + t) * xf + off);
        }
      }
    }
    weightSums(k, phases.data(), dzPlane.data(), k.planeWeights + p * rows);
  }
}

DEEPVISION_AVX2 void reducePlanesAvx2(const BackWork& k, int64_t p0, int64_t p1) {
  reducePlanes(k, p0, p1);
}
DEEPVISION_AVX2_FMA void gradPlanesAvx2(const BackWork& k, int64_t p0, int64_t p1) {
  gradPlanes(k, p0, p1);
}
void reducePlanesBaseline(const BackWork& k, int64_t p0, int64_t p1) {
  reducePlanes(k, p0, p1);
}
void gradPlanesBaseline(const BackWork& k, int64_t p0, int64_t p1) {
  gradPlanes(k, p0, p1);
}

// ---- arguments ----

struct Arrays {
  std::vector<float*> data;
  std::vector<size_t> length;
};

// `count` Float32Arrays from a JavaScript array, each as long as `want` says; the ones from `firstWritten` on are
// written, so they may share memory with no other.
bool readArrays(napi_env env, napi_value list, const char* name, const std::vector<int64_t>& want, size_t firstWritten, Arrays* out) {
  bool isArray = false;
  uint32_t count = 0;
  if (napi_is_array(env, list, &isArray) != napi_ok || !isArray || napi_get_array_length(env, list, &count) != napi_ok || count != want.size()) {
    return fail(env, std::string(name) + ": floats is not an array of " + std::to_string(want.size()) + " Float32Arrays");
  }
  out->data.resize(count);
  out->length.resize(count);
  for (uint32_t i = 0; i < count; i++) {
    napi_value item;
    napi_get_element(env, list, i, &item);
    const std::string what = std::string(name) + ": floats[" + std::to_string(i) + "]";
    if (!floatArray(env, item, what, &out->data[i], &out->length[i])) return false;
    if (static_cast<int64_t>(out->length[i]) != want[i]) {
      return fail(env, what + " has " + std::to_string(out->length[i]) + " values, the geometry needs " + std::to_string(want[i]));
    }
  }
  for (size_t i = firstWritten; i < count; i++) {
    for (size_t j = 0; j < count; j++) {
      const float *p = out->data[i], *q = out->data[j];
      if (i != j && p < q + out->length[j] && q < p + out->length[i]) return fail(env, std::string(name) + ": floats[" + std::to_string(i) + "] shares memory with another array");
    }
  }
  return true;
}

bool readTies(napi_env env, napi_value value, const char* name, int64_t want, uint8_t** ties) {
  bool isTyped = false;
  napi_typedarray_type type;
  size_t length = 0;
  void* raw = nullptr;
  if (napi_is_typedarray(env, value, &isTyped) != napi_ok || !isTyped || napi_get_typedarray_info(env, value, &type, &length, &raw, nullptr, nullptr) != napi_ok
      || type != napi_uint8_array || static_cast<int64_t>(length) != want) {
    return fail(env, std::string(name) + ": ties is not a Uint8Array of " + std::to_string(want) + " values");
  }
  *ties = static_cast<uint8_t*>(raw);
  return true;
}

template <napi_typedarray_type Type, typename T>
bool readTyped(napi_env env, napi_value value, const std::string& what, size_t want, const T** data) {
  bool isTyped = false;
  napi_typedarray_type type;
  size_t length = 0;
  void* raw = nullptr;
  if (napi_is_typedarray(env, value, &isTyped) != napi_ok || !isTyped || napi_get_typedarray_info(env, value, &type, &length, &raw, nullptr, nullptr) != napi_ok
      || type != Type || length != want) {
    return fail(env, what + " is not a typed array of " + std::to_string(want) + " values of its type");
  }
  *data = static_cast<const T*>(raw);
  return true;
}

// The geometry: [N, C, H, W, M, kH, kW, padTop, padLeft, padBottom, padRight], with an even output grid.
bool readGeometry(napi_env env, napi_value value, const char* name, StemGeometry* g) {
  const int32_t* v = nullptr;
  if (!readTyped<napi_int32_array>(env, value, std::string(name) + ": geometry", 11, &v)) return false;
  *g = StemGeometry{v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9], v[10], 0, 0};
  g->oh = g->h + g->pt + g->pb - g->kh + 1;
  g->ow = g->w + g->pl + g->pr - g->kw + 1;
  const bool valid = g->n >= 0 && g->c > 0 && g->h > 0 && g->w > 0 && g->m > 0 && g->kh > 0 && g->kw > 0 && g->pt >= 0 && g->pl >= 0 && g->pb >= 0 && g->pr >= 0
                     && g->oh > 0 && g->ow > 0 && g->oh % 2 == 0 && g->ow % 2 == 0;
  return valid || fail(env, std::string(name) + ": geometry has a size below 1, a negative pad or an odd convolution output");
}

// ---- the per-channel factors ----

// Per-plane sums [n][m][width] added over the images in order: [m][width], the same whatever the thread count.
std::vector<double> sumOverImages(const StemGeometry& g, const std::vector<double>& planes, int64_t width) {
  std::vector<double> sums(static_cast<size_t>(g.m * width));
  for (int64_t n = 0; n < g.n; n++) {
    for (int64_t i = 0; i < g.m * width; i++) sums[static_cast<size_t>(i)] += planes[static_cast<size_t>(n * g.m * width + i)];
  }
  return sums;
}

}  // namespace

napi_value StemForward(napi_env env, napi_callback_info info) {
  napi_value args[5];
  StemGeometry g;
  if (!callArguments(env, info, "stemForward", 5, args) || !readGeometry(env, args[2], "stemForward", &g)) return nullptr;
  const int64_t m = g.m, zn = g.n * m * g.plane(), pn = g.n * m * g.pooled();
  Arrays a;
  if (!readArrays(env, args[0], "stemForward", {g.n * g.c * g.h * g.w, m * g.c * g.kh * g.kw, m, m, m, m, m, zn, pn, m, m, m, m}, 7, &a)) return nullptr;
  uint8_t* ties = nullptr;
  const float* settings = nullptr;
  if (!readTies(env, args[1], "stemForward", pn, &ties) || !readTyped<napi_float32_array>(env, args[3], "stemForward: settings", 3, &settings)) return nullptr;
  const int threads = threadCount(env, args[4]);
  const float *x = a.data[0], *w = a.data[1], *bias = a.data[2], *gamma = a.data[3], *beta = a.data[4], *runningMean = a.data[5], *runningVar = a.data[6];
  float *z = a.data[7], *pooled = a.data[8], *mean = a.data[9], *invstd = a.data[10], *meanOut = a.data[11], *varOut = a.data[12];

  std::vector<double> planes(static_cast<size_t>(g.n * m * 2));
  ConvWork k{g, g.convolution(), {}, x, w, bias, z, planes.data()};
  k.l = phaseLayoutOf(k.plane, 0);
  const auto conv = forThisCpu(convImagesAvx2, convImagesBaseline);
  parallel(g.n, threads, [&](int64_t n0, int64_t n1) { conv(k, n0, n1); });

  // The batch statistics, as the graph's: mean, and the variance as E[z^2] - mean^2 (clamped at 0).
  const std::vector<double> sums = sumOverImages(g, planes, 2);
  const double count = static_cast<double>(g.n * g.plane());
  const float epsilon = settings[0], momentum = settings[1];
  const bool normalize = settings[2] != 0;
  std::vector<float> scale(static_cast<size_t>(m)), shift(static_cast<size_t>(m));
  for (int64_t c = 0; c < m; c++) {
    const size_t i = static_cast<size_t>(c);
    const double mu = count > 0 ? sums[2 * i] / count : 0.0;
    const double variance = count > 0 ? std::max(0.0, sums[2 * i + 1] / count - mu * mu) : 0.0;
    mean[c] = static_cast<float>(mu);
    invstd[c] = static_cast<float>(1.0 / std::sqrt(variance + epsilon));
    // PyTorch's running statistics, as the graph updates them: the unbiased variance, momentum as ONNX defines it.
    meanOut[c] = static_cast<float>(runningMean[c] * static_cast<double>(momentum) + mu * (1.0 - momentum));
    varOut[c] = static_cast<float>(runningVar[c] * static_cast<double>(momentum) + variance * count / std::max(count - 1, 1.0) * (1.0 - momentum));
    if (!normalize) {
      // No batch norm: the ReLU reads z itself, and the backward's xhat terms vanish.
      mean[c] = 0.0f;
      invstd[c] = 1.0f;
      meanOut[c] = runningMean[c];
      varOut[c] = runningVar[c];
    }
    scale[i] = normalize ? gamma[c] * invstd[c] : 1.0f;
    shift[i] = normalize ? beta[c] - mean[c] * scale[i] : 0.0f;
  }

  // Normalize, ReLU, pool: each window's maximum and which of its cells equal it.
  const PoolWork pw{g, scale.data(), shift.data(), z, pooled, ties};
  const auto pool = forThisCpu(poolPlanesAvx2, poolPlanesBaseline);
  parallel(g.n * m, threads, [&](int64_t p0, int64_t p1) { pool(pw, p0, p1); });
  return nullptr;
}

napi_value StemBackward(napi_env env, napi_callback_info info) {
  napi_value args[5];
  StemGeometry g;
  if (!callArguments(env, info, "stemBackward", 5, args) || !readGeometry(env, args[2], "stemBackward", &g)) return nullptr;
  const int64_t m = g.m, zn = g.n * m * g.plane(), pn = g.n * m * g.pooled();
  Arrays a;
  const int64_t rows = g.c * g.kh * g.kw;
  if (!readArrays(env, args[0], "stemBackward", {g.n * g.c * g.h * g.w, zn, pn, pn, m, m, m, m * rows, m, m}, 7, &a)) return nullptr;
  uint8_t* ties = nullptr;
  const float* settings = nullptr;
  if (!readTies(env, args[1], "stemBackward", pn, &ties) || !readTyped<napi_float32_array>(env, args[3], "stemBackward: settings", 1, &settings)) return nullptr;
  const bool normalize = settings[0] != 0;
  const int threads = threadCount(env, args[4]);
  const float *x = a.data[0], *z = a.data[1], *pooled = a.data[2], *pooledGrad = a.data[3], *gamma = a.data[4], *mean = a.data[5], *invstd = a.data[6];
  float *weightGrad = a.data[7], *gammaGrad = a.data[8], *betaGrad = a.data[9];
  std::vector<float> xhatShift(static_cast<size_t>(m));
  for (int64_t c = 0; c < m; c++) xhatShift[static_cast<size_t>(c)] = -mean[c] * invstd[c];
  std::vector<double> planes(static_cast<size_t>(g.n * m * 2));
  const PlaneGeometry plane = g.convolution();
  const PhaseLayout layout = phaseLayoutOf(plane, 0);
  std::vector<double> planeWeights(static_cast<size_t>(g.n * m * rows));
  BackWork k{g, z, pooled, pooledGrad, ties, invstd, xhatShift.data(), planes.data(), nullptr, nullptr, nullptr, x, plane, &layout, planeWeights.data()};
  const auto reduce = forThisCpu(reducePlanesAvx2, reducePlanesBaseline);
  const auto grad = forThisCpu(gradPlanesAvx2, gradPlanesBaseline);
  parallel(g.n * m, threads, [&](int64_t p0, int64_t p1) { reduce(k, p0, p1); });
  const std::vector<double> sums = sumOverImages(g, planes, 2);
  const double count = static_cast<double>(g.n * g.plane());
  std::vector<float> factor(static_cast<size_t>(m)), xhatFactor(static_cast<size_t>(m)), offset(static_cast<size_t>(m));
  for (int64_t c = 0; c < m; c++) {
    const size_t i = static_cast<size_t>(c);
    const double sumG = sums[2 * i], sumGX = sums[2 * i + 1];
    gammaGrad[c] = static_cast<float>(sumGX);
    betaGrad[c] = static_cast<float>(sumG);
    // Without batch norm dZ is dY itself (dY * 1 - (z * 0 + 0)), and sum(dY) is the bias's gradient.
    factor[i] = normalize ? gamma[c] * invstd[c] : 1.0f;
    xhatFactor[i] = normalize && count > 0 ? static_cast<float>(factor[i] * sumGX / count) : 0.0f;
    offset[i] = normalize && count > 0 ? static_cast<float>(factor[i] * sumG / count) : 0.0f;
  }
  k.k = factor.data();
  k.xhatFactor = xhatFactor.data();
  k.offset = offset.data();
  parallel(g.n * m, threads, [&](int64_t p0, int64_t p1) { grad(k, p0, p1); });
  // The weight gradient [M, C, kH, kW] = [m][rows].
  const std::vector<double> weights = sumOverImages(g, planeWeights, rows);
  for (int64_t i = 0; i < m * rows; i++) weightGrad[i] = static_cast<float>(weights[static_cast<size_t>(i)]);
  return nullptr;
}

}  // namespace deepvision
