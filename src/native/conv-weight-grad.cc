// dW[m, c, kh, kw] = sum over n, oh, ow of x[n, c, oh*sH + kh*dH - padTop, ow*sW + kw*dW - padLeft] * dY[n, m, oh, ow],
// where standard ONNX builds an im2col of x (kH*kW copies of it), transposes dY and runs one GEMM
// (src/autodiff/rules/conv.ts, convBackpropFilter).
//
// Outer-product form, with no im2col: each image's x planes are spread into phase planes (plane-phases.h), where
// tap t of channel c reads a contiguous run, and its dY is transposed to [M / 16][position][16]. A tile of R rows
// (c, tap) by V vectors of output channels sums in registers: for each output position, V loads of dY and one
// broadcast of x per row feed R * V fused multiply-adds (6 x 4 vectors of 16 with AVX-512, 6 x 2 of 8 with AVX2,
// counted to fit each one's registers). The positions are taken in blocks of about kBlockPositions, whose dY stays
// in the L2 cache while every tile passes over it; each tile's float sums go into double at the end of a block, so
// that they stay short.
//
// The batch is cut into min(N, kSlices) slices of consecutive images. Threads take whole slices, each slice's sum
// is rounded to float, and the slices are added in order in double: the result depends neither on the thread
// count nor on the instruction set (the same fused multiply-adds in the same order with AVX-512 and AVX2; CPUs
// without FMA round each product, within float rounding of the others).
#include "conv-weight-grad.h"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <thread>
#include <vector>

#include "cpu-isa.h"
#include "plane-phases.h"
#include "weight-grad-arguments.h"

namespace deepvision {
namespace {

struct Geometry : PlaneGeometry {
  int64_t n, c, m;
};

constexpr int64_t kSlices = 8;
// dY's rows are padded to a multiple of this many output channels, the widest vector's lanes.
constexpr int64_t kChannelBlock = 16;

// Sixteen floats as one value: one AVX-512 register, two AVX2 ones (GCC's vector extension).
typedef float Lanes16 __attribute__((vector_size(16 * sizeof(float))));
typedef float UnalignedLanes16 __attribute__((vector_size(16 * sizeof(float)), aligned(alignof(float))));

template <typename Vec>
DEEPVISION_INLINE Vec loadVec(const float* p) {
  if constexpr (sizeof(Vec) == sizeof(Lanes16)) return *reinterpret_cast<const UnalignedLanes16*>(p);
  else return load(p);
}
constexpr int64_t kBlockPositions = 512;

// What every slice shares: the geometry, the layout of a plane's phases, dY's padded row length.
struct Work {
  Geometry g;
  PhaseLayout l;
  int64_t taps, rows, mPadded, positions, slices;
  const float* x;
  const float* dy;
  // [slices][rows][mPadded]: each slice's sums, rounded to float.
  float* sliceSums;
  int64_t sliceBegin(int64_t s) const { return g.n * s / slices; }
};

// One thread's buffers for the images of one block of positions (below): x's phase planes [image][c][planeSize],
// dY transposed in blocks of kChannelBlock output channels [mPadded / kChannelBlock][image][position][kChannelBlock];
// and a slice's double sums [rows][mPadded]. Their size does not grow with the batch. Zero-filled once: spreadPlane
// writes the same positions every time, and the columns of dY past M stay zero.
struct Buffers {
  // The positions of all the images the buffers hold: one channel block's stride in dyT.
  int64_t span;
  std::vector<float> phases, dyT;
  std::vector<double> sums;
  Buffers(const Work& w, int64_t images)
      : span(images * w.positions), phases(static_cast<size_t>(images * w.g.c * w.l.planeSize())), dyT(static_cast<size_t>(span * w.mPadded)),
        sums(static_cast<size_t>(w.rows * w.mPadded)) {}
  // Where output channel m (a vector's first lane) of position p of the image in `slot` lives in dyT.
  int64_t dyIndex(const Work& w, int64_t m, int64_t slot, int64_t p) const {
    return ((m / kChannelBlock) * span + slot * w.positions + p) * kChannelBlock + m % kChannelBlock;
  }
};

// dY [M, positions] of the image in `slot` into dyT's channel blocks. A tile then reads its output channels'
// vectors at consecutive addresses, position after position: with a [position][mPadded] layout its reads were
// mPadded floats apart, and that stride (256 or 512 bytes) left them a quarter or an eighth of the L1 cache's sets.
DEEPVISION_INLINE void transpose(const Work& w, const float* dy, Buffers& b, int64_t slot) {
  for (int64_t m = 0; m < w.g.m; m++) {
    const float* in = dy + m * w.positions;
    float* out = b.dyT.data() + b.dyIndex(w, m, slot, 0);
    for (int64_t p = 0; p < w.positions; p++) out[p * kChannelBlock] = in[p];
  }
}

// A block of about kBlockPositions output positions: several small images, or a few rows of one large image. Its
// dY (at most kBlockPositions * mPadded floats) stays in the L2 cache while every tile passes over it.
struct Block {
  int64_t image0, image1, row0, row1;
};

int64_t imagesPerBlock(const Geometry& g) {
  const int64_t positions = g.oh * g.ow;
  return positions >= kBlockPositions ? 1 : kBlockPositions / positions;
}

// The blocks of `images` consecutive images, in order: by images, then by rows within an image.
std::vector<Block> blocksOf(const Geometry& g, int64_t images) {
  const int64_t positions = g.oh * g.ow;
  const int64_t perBlock = imagesPerBlock(g);
  const int64_t rowsPerBlock = positions >= kBlockPositions ? std::max<int64_t>(1, kBlockPositions / g.ow) : g.oh;
  std::vector<Block> blocks;
  for (int64_t i = 0; i < images; i += perBlock) {
    for (int64_t r = 0; r < g.oh; r += rowsPerBlock) blocks.push_back({i, std::min(images, i + perBlock), r, std::min(g.oh, r + rowsPerBlock)});
  }
  return blocks;
}

// sums[r0 + k][m0 + j] += the products of rows r0 .. r0 + active - 1 with output channels m0 .. m0 + V*lanes - 1
// over one block, summed in registers. Rows past `active` repeat the last one and are not written.
template <typename Vec, int R, int V>
DEEPVISION_INLINE void tile(const Work& w, const Buffers& b, const Block& block, int64_t r0, int64_t active, int64_t m0, double* sums) {
  const Geometry& g = w.g;
  constexpr int64_t lanes = sizeof(Vec) / sizeof(float);
  Vec acc[R][V];
  for (int k = 0; k < R; k++) for (int v = 0; v < V; v++) acc[k][v] = Vec{};
  for (int64_t image = block.image0; image < block.image1; image++) {
    const float* x[R];
    for (int k = 0; k < R; k++) {
      const int64_t row = r0 + std::min<int64_t>(k, active - 1);
      x[k] = b.phases.data() + ((image - block.image0) * g.c + row / w.taps) * w.l.planeSize() + w.l.tapStart[static_cast<size_t>(row % w.taps)];
    }
    const float* d[V];
    for (int v = 0; v < V; v++) d[v] = b.dyT.data() + b.dyIndex(w, m0 + v * lanes, image - block.image0, 0);
    for (int64_t oh = block.row0; oh < block.row1; oh++) {
      const int64_t q = oh * w.l.stride;
      const int64_t row = oh * g.ow * kChannelBlock;
      for (int64_t ow = 0; ow < g.ow; ow++) {
        Vec dv[V];
        for (int v = 0; v < V; v++) dv[v] = loadVec<Vec>(d[v] + row + ow * kChannelBlock);
        for (int k = 0; k < R; k++) {
          // x - 0 is x for every float: a plain broadcast.
          const Vec xv = x[k][q + ow] - Vec{};
          for (int v = 0; v < V; v++) acc[k][v] += xv * dv[v];
        }
      }
    }
  }
  for (int64_t k = 0; k < active; k++) {
    double* out = sums + (r0 + k) * w.mPadded + m0;
    for (int v = 0; v < V; v++) for (int64_t i = 0; i < lanes; i++) out[v * lanes + i] += acc[k][v][i];
  }
}

// tile<Vec, R, width> for a width of 1 to V vectors, known at compile time.
template <typename Vec, int R, int V>
DEEPVISION_INLINE void narrower(int64_t width, const Work& w, Buffers& b, const Block& block, int64_t r0, int64_t active, int64_t m0) {
  if (width == V) tile<Vec, R, V>(w, b, block, r0, active, m0, b.sums.data());
  else if constexpr (V > 1) narrower<Vec, R, V - 1>(width, w, b, block, r0, active, m0);
}

// One slice: for each block of positions (its images spread and transposed when it starts new ones), every (row
// tile, output-channel block), summed in double and rounded into the slice's sums.
template <typename Vec, int R, int V>
DEEPVISION_INLINE void slice(const Work& w, Buffers& b, int64_t s) {
  const Geometry& g = w.g;
  const int64_t first = w.sliceBegin(s), images = w.sliceBegin(s + 1) - first;
  std::fill(b.sums.begin(), b.sums.end(), 0.0);
  constexpr int64_t lanes = sizeof(Vec) / sizeof(float);
  const int64_t vectors = w.mPadded / lanes;
  int64_t loaded = -1;
  for (const Block& block : blocksOf(g, images)) {
    for (int64_t i = block.image0; i < block.image1 && block.image0 != loaded; i++) {
      const int64_t n = first + i, slot = i - block.image0;
      for (int64_t c = 0; c < g.c; c++) {
        spreadPlane(g, w.l, w.x + (n * g.c + c) * g.h * g.w, b.phases.data() + (slot * g.c + c) * w.l.planeSize());
      }
      transpose(w, w.dy + n * g.m * w.positions, b, slot);
    }
    loaded = block.image0;
    for (int64_t r0 = 0; r0 < w.rows; r0 += R) {
      const int64_t active = std::min<int64_t>(R, w.rows - r0);
      for (int64_t v0 = 0; v0 < vectors; v0 += V) {
        const int64_t m0 = v0 * lanes;
        // The last block of output channels may be narrower than V vectors.
        narrower<Vec, R, V>(std::min<int64_t>(V, vectors - v0), w, b, block, r0, active, m0);
      }
    }
  }
  float* out = w.sliceSums + s * w.rows * w.mPadded;
  for (size_t i = 0; i < b.sums.size(); i++) out[i] = static_cast<float>(b.sums[i]);
}

template <typename Vec, int R, int V>
DEEPVISION_INLINE void slices(const Work& w, int64_t s0, int64_t s1) {
  int64_t most = 0;
  for (int64_t s = s0; s < s1; s++) most = std::max(most, w.sliceBegin(s + 1) - w.sliceBegin(s));
  Buffers b(w, std::min(most, imagesPerBlock(w.g)));
  for (int64_t s = s0; s < s1; s++) slice<Vec, R, V>(w, b, s);
}

// The tile that fits each instruction set's registers: AVX-512's 32 hold 6 x 4 sums, 4 dY vectors and a
// broadcast; AVX2's 16 hold 6 x 2 sums of 8 lanes. Each output channel sums in its own lane on all of them. Other
// AVX-512 tiles measured no faster (isolated, 2 threads): 4 x 6 the same, 2 x 8 and 3 x 7 15-25 % slower.
// Measured on the reference CNN's second layer (isolated, 1 thread): 11.4 ms with 8-lane vectors and separate
// multiplies and adds, 9.2 ms once the broadcast was a plain one, 7.1-7.8 ms with AVX-512 FMA and the sums kept in
// registers across output rows.
#if defined(__GNUC__) && defined(__x86_64__)
__attribute__((target("avx512f,fma"), optimize("fp-contract=fast"))) void slicesAvx512(const Work& w, int64_t s0, int64_t s1) {
  slices<Lanes16, 6, 4>(w, s0, s1);
}
__attribute__((target("avx2,fma"), optimize("fp-contract=fast"))) void slicesAvx2(const Work& w, int64_t s0, int64_t s1) {
  slices<Lanes, 6, 2>(w, s0, s1);
}
#endif
void slicesBaseline(const Work& w, int64_t s0, int64_t s1) {
  slices<Lanes, 4, 2>(w, s0, s1);
}

using SliceRange = void (*)(const Work&, int64_t, int64_t);

// The widest build this CPU runs (cpu-isa.h).
SliceRange sliceRangeForThisCpu() {
#if defined(__GNUC__) && defined(__x86_64__)
  switch (widestIsa()) {
    case Isa::kAvx512: return slicesAvx512;
    case Isa::kAvx2: return slicesAvx2;
    case Isa::kBaseline: break;
  }
#endif
  return slicesBaseline;
}

// dW [M, C, kH, kW] from rows [r0, r1) of the slices' sums [rows = (c, tap)][mPadded], added in slice order.
void reduceSlices(const Work& w, float* dw, int64_t r0, int64_t r1) {
  std::vector<double> sum(static_cast<size_t>(w.g.m));
  for (int64_t r = r0; r < r1; r++) {
    std::fill(sum.begin(), sum.end(), 0.0);
    for (int64_t s = 0; s < w.slices; s++) {
      const float* part = w.sliceSums + (s * w.rows + r) * w.mPadded;
      for (int64_t m = 0; m < w.g.m; m++) sum[static_cast<size_t>(m)] += part[m];
    }
    const int64_t c = r / w.taps, t = r % w.taps;
    for (int64_t m = 0; m < w.g.m; m++) dw[(m * w.g.c + c) * w.taps + t] = static_cast<float>(sum[static_cast<size_t>(m)]);
  }
}

}  // namespace

napi_value ConvWeightGrad(napi_env env, napi_callback_info info) {
  WeightGradArguments a;
  if (!readWeightGradArguments(env, info, "convWeightGrad", 15, &a)) return nullptr;
  const int32_t* v = a.geometry;
  const Geometry g{{v[2], v[3], v[5], v[6], v[7], v[8], v[9], v[10], v[11], v[12], v[13], v[14]}, v[0], v[1], v[4]};
  if (!validGeometry(env, g, g.n >= 0 && g.c > 0 && g.m > 0) || !validSizes(env, a, g.n * g.c * g.h * g.w, g.n * g.m * g.oh * g.ow, g.m * g.c * g.kh * g.kw)) {
    return nullptr;
  }
  float* dw = a.dw;
  Work w{g, phaseLayoutOf(g, 0), g.kh * g.kw, g.c * g.kh * g.kw, (g.m + kChannelBlock - 1) / kChannelBlock * kChannelBlock, g.oh * g.ow, std::min(g.n, kSlices), a.x, a.dy, nullptr};
  if (w.slices == 0) {
    std::fill_n(dw, a.dwn, 0.0f);
    return nullptr;
  }
  std::vector<float> sliceSums(static_cast<size_t>(w.slices * w.rows * w.mPadded));
  w.sliceSums = sliceSums.data();
  const SliceRange sliceRange = sliceRangeForThisCpu();
  const auto parallel = [](int64_t parts, int64_t workers, const auto& run) {
    std::vector<std::thread> pool;
    for (int64_t t = 1; t < workers; t++) pool.emplace_back(run, parts * t / workers, parts * (t + 1) / workers);
    run(0, parts / workers);
    for (auto& t : pool) t.join();
  };
  const int64_t threads = threadCount(env, a.threads);
  parallel(w.slices, std::min<int64_t>(threads, w.slices), [&](int64_t s0, int64_t s1) { sliceRange(w, s0, s1); });
  parallel(w.rows, std::min<int64_t>(threads, w.rows), [&](int64_t r0, int64_t r1) { reduceSlices(w, dw, r0, r1); });
  return nullptr;
}

}  // namespace deepvision
