// The Node CPU trainer's fused optimizer (issue 22): one in-place pass over every parameter, its gradient and its
// optimizer slots, on all cores, where the optimizer graph makes 12 passes into fresh buffers. The arithmetic is the
// optimizer graph's (src/optim/update-rules.ts), operation for operation in float32, so that the two agree to the
// last bit where the scalars agree; src/native/fused-optimizer.ts computes those scalars and checks the arrays.
//
// Built by scripts/build-native.mjs with the C Node-API only (node_api.h from the node-api-headers package), so the
// same binary loads in every Node version that has Node-API 8.
#include <node_api.h>

#include "conv-stem.h"
#include "conv-weight-grad.h"
#include "depthwise-weight-grad.h"
#include "node-api-arguments.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace deepvision {
namespace {

// Work is cut into blocks of this many elements, whatever the thread count, so that the gradient norm's partial
// sums (and so every result) are the same on 1 or 16 threads.
constexpr size_t kBlock = 1 << 15;
// Below this many elements in all, a second thread costs more to start than it saves.
constexpr size_t kThreadedMinimum = 1 << 18;

// One parameter's arrays: the parameter, its gradient and up to two optimizer slots (nullptr where absent).
struct Tensors {
  float* param = nullptr;
  const float* grad = nullptr;
  float* slot0 = nullptr;
  float* slot1 = nullptr;
  size_t size = 0;
};

struct Block {
  size_t tensor;
  size_t begin;
  size_t end;
};

std::vector<Block> blocksOf(const std::vector<Tensors>& tensors) {
  std::vector<Block> blocks;
  for (size_t t = 0; t < tensors.size(); t++) {
    for (size_t b = 0; b < tensors[t].size; b += kBlock) blocks.push_back({t, b, std::min(tensors[t].size, b + kBlock)});
  }
  return blocks;
}

// Runs work(block index) for every block, on up to `threads` threads, each taking a contiguous run of blocks.
template <typename Work>
void forEachBlock(size_t blocks, size_t elements, int threads, const Work& work) {
  size_t workers = elements < kThreadedMinimum ? 1 : std::max<size_t>(1, std::min<size_t>(threads, blocks));
  auto run = [&](size_t w) {
    for (size_t i = blocks * w / workers; i < blocks * (w + 1) / workers; i++) work(i);
  };
  std::vector<std::thread> pool;
  for (size_t w = 1; w < workers; w++) pool.emplace_back(run, w);
  run(0);
  for (auto& t : pool) t.join();
}

// ---------------------------------------------------------------------------------------------------------------
// Argument reading: every failure throws a JavaScript Error with a message that names the array, and returns false.

bool element(napi_env env, napi_value array, uint32_t i, napi_value* out) {
  return napi_get_element(env, array, i, out) == napi_ok || fail(env, "cannot read an array element");
}

bool arrayLength(napi_env env, napi_value value, const std::string& what, uint32_t* length) {
  bool isArray = false;
  if (napi_is_array(env, value, &isArray) != napi_ok || !isArray) return fail(env, what + " is not an array");
  return napi_get_array_length(env, value, length) == napi_ok || fail(env, what + " is not an array");
}

// Every array is written or read while others are written: two that share memory would corrupt each other.
bool noOverlap(napi_env env, const std::vector<Tensors>& tensors) {
  std::vector<std::pair<uintptr_t, uintptr_t>> ranges;
  for (const auto& t : tensors) {
    for (const void* p : {static_cast<const void*>(t.param), static_cast<const void*>(t.grad), static_cast<const void*>(t.slot0), static_cast<const void*>(t.slot1)}) {
      if (p != nullptr && t.size > 0) ranges.emplace_back(reinterpret_cast<uintptr_t>(p), reinterpret_cast<uintptr_t>(p) + t.size * sizeof(float));
    }
  }
  std::sort(ranges.begin(), ranges.end());
  for (size_t i = 1; i < ranges.size(); i++) {
    if (ranges[i].first < ranges[i - 1].second) return fail(env, "two of the arrays share memory");
  }
  return true;
}

// Reads ([params], [grads], [slots0] | null, [slots1] | null) into one Tensors per parameter, every array of a
// parameter the same length.
bool readTensors(napi_env env, napi_value* args, std::vector<Tensors>* out) {
  uint32_t count = 0;
  if (!arrayLength(env, args[0], "params", &count)) return false;
  const char* names[] = {"params", "grads", "first slots", "second slots"};
  out->resize(count);
  for (int k = 0; k < 4; k++) {
    napi_valuetype type;
    napi_typeof(env, args[k], &type);
    if (k >= 2 && (type == napi_null || type == napi_undefined)) continue;
    uint32_t n = 0;
    if (!arrayLength(env, args[k], names[k], &n)) return false;
    if (n != count) return fail(env, std::string(names[k]) + ": " + std::to_string(n) + " arrays for " + std::to_string(count) + " parameters");
    for (uint32_t i = 0; i < count; i++) {
      napi_value v;
      float* data = nullptr;
      size_t length = 0;
      const std::string what = std::string(names[k]) + "[" + std::to_string(i) + "]";
      if (!element(env, args[k], i, &v) || !floatArray(env, v, what, &data, &length)) return false;
      Tensors& t = (*out)[i];
      if (k == 0) t.size = length;
      else if (length != t.size) {
        return fail(env, what + " has " + std::to_string(length) + " elements, the parameter " + std::to_string(t.size));
      }
      if (k == 0) t.param = data;
      if (k == 1) t.grad = data;
      if (k == 2) t.slot0 = data;
      if (k == 3) t.slot1 = data;
    }
  }
  return noOverlap(env, *out);
}

// Per-parameter float32 scalars: a Float32Array of count * columns values, row i for parameter i.
bool readScalars(napi_env env, napi_value value, size_t count, size_t columns, const float** out) {
  float* data = nullptr;
  size_t length = 0;
  if (!floatArray(env, value, "scalars", &data, &length)) return false;
  if (length != count * columns) return fail(env, "scalars: expected " + std::to_string(count * columns) + " values, got " + std::to_string(length));
  *out = data;
  return true;
}

// ---------------------------------------------------------------------------------------------------------------
// The updates. Flags are loop-invariant: the compiler unswitches the loops, each variant vectorized.

struct SgdSettings {
  bool clip, decay, momentum, dampening, nesterov;
  float clipScale, weightDecay, mu, bufferScale;
};

void sgdRange(const SgdSettings& s, const Tensors& t, float lr, size_t begin, size_t end) {
  float* __restrict p = t.param;
  const float* __restrict g = t.grad;
  float* __restrict buf = t.slot0;
  for (size_t i = begin; i < end; i++) {
    float d = g[i];
    if (s.clip) d = d * s.clipScale;
    if (s.decay) d = d + p[i] * s.weightDecay;
    if (s.momentum) {
      const float b = s.dampening ? buf[i] * s.mu + d * s.bufferScale : buf[i] * s.mu + d;
      buf[i] = b;
      d = s.nesterov ? d + b * s.mu : b;
    }
    p[i] = p[i] - d * lr;
  }
}

struct AdamSettings {
  bool clip, l2, decoupled;
  float clipScale, weightDecay, oneMinusBeta1, oneMinusBeta2;
};

// Per-parameter scalars: [step size, eps * sqrt(1 - beta2^t), decoupled decay factor].
void adamRange(const AdamSettings& s, const Tensors& t, const float* scalars, size_t begin, size_t end) {
  float* __restrict p = t.param;
  const float* __restrict g = t.grad;
  float* __restrict m = t.slot0;
  float* __restrict v = t.slot1;
  const float stepSize = scalars[0], epsilon = scalars[1], decayFactor = scalars[2];
  for (size_t i = begin; i < end; i++) {
    float d = g[i];
    if (s.clip) d = d * s.clipScale;
    float w = p[i];
    if (s.l2) d = d + w * s.weightDecay;
    if (s.decoupled) w = w * decayFactor;
    const float mi = m[i] + (d - m[i]) * s.oneMinusBeta1;
    const float vi = v[i] + (d * d - v[i]) * s.oneMinusBeta2;
    m[i] = mi;
    v[i] = vi;
    const float update = mi / (std::sqrt(vi) + epsilon);
    p[i] = w - update * stepSize;
  }
}

size_t totalSize(const std::vector<Tensors>& tensors) {
  size_t n = 0;
  for (const auto& t : tensors) n += t.size;
  return n;
}

bool flag(napi_env env, napi_value settings, const char* name) {
  napi_value v;
  bool b = false;
  if (napi_get_named_property(env, settings, name, &v) == napi_ok) napi_get_value_bool(env, v, &b);
  return b;
}

float scalar(napi_env env, napi_value settings, const char* name) {
  napi_value v;
  double d = 0;
  if (napi_get_named_property(env, settings, name, &v) == napi_ok) napi_get_value_double(env, v, &d);
  return static_cast<float>(d);
}

// Runs work(block) over every block of the tensors, on the threads the call asked for.
template <typename Work>
void overBlocks(napi_env env, napi_value threads, const std::vector<Tensors>& tensors, const Work& work) {
  const auto blocks = blocksOf(tensors);
  forEachBlock(blocks.size(), totalSize(tensors), threadCount(env, threads), [&](size_t b) { work(b, blocks[b]); });
}

// sgd(params, grads, buffers | null, lrs: Float32Array, settings, threads)
napi_value Sgd(napi_env env, napi_callback_info info) {
  napi_value args[6];
  if (!callArguments(env, info, "sgd", 6, args)) return nullptr;
  std::vector<Tensors> tensors;
  napi_value noSlot;
  napi_get_null(env, &noSlot);
  napi_value tensorArgs[4] = {args[0], args[1], args[2], noSlot};
  if (!readTensors(env, tensorArgs, &tensors)) return nullptr;
  const float* lrs = nullptr;
  if (!readScalars(env, args[3], tensors.size(), 1, &lrs)) return nullptr;
  SgdSettings s{flag(env, args[4], "clip"), flag(env, args[4], "decay"), flag(env, args[4], "momentum"), flag(env, args[4], "dampening"),
                flag(env, args[4], "nesterov"), scalar(env, args[4], "clipScale"), scalar(env, args[4], "weightDecay"),
                scalar(env, args[4], "mu"), scalar(env, args[4], "bufferScale")};
  if (s.momentum) {
    for (size_t i = 0; i < tensors.size(); i++) if (tensors[i].slot0 == nullptr) return fail(env, "sgd with momentum needs buffers"), nullptr;
  }
  overBlocks(env, args[5], tensors, [&](size_t, const Block& k) { sgdRange(s, tensors[k.tensor], lrs[k.tensor], k.begin, k.end); });
  return nullptr;
}

// adam(params, grads, exp_avg, exp_avg_sq, scalars: Float32Array (3 per parameter), settings, threads)
napi_value Adam(napi_env env, napi_callback_info info) {
  napi_value args[7];
  if (!callArguments(env, info, "adam", 7, args)) return nullptr;
  std::vector<Tensors> tensors;
  if (!readTensors(env, args, &tensors)) return nullptr;
  for (const auto& t : tensors) if (t.slot0 == nullptr || t.slot1 == nullptr) return fail(env, "adam needs both moment arrays"), nullptr;
  const float* scalars = nullptr;
  if (!readScalars(env, args[4], tensors.size(), 3, &scalars)) return nullptr;
  AdamSettings s{flag(env, args[5], "clip"), flag(env, args[5], "l2"), flag(env, args[5], "decoupled"), scalar(env, args[5], "clipScale"),
                 scalar(env, args[5], "weightDecay"), scalar(env, args[5], "oneMinusBeta1"), scalar(env, args[5], "oneMinusBeta2")};
  overBlocks(env, args[6], tensors, [&](size_t, const Block& k) { adamRange(s, tensors[k.tensor], scalars + 3 * k.tensor, k.begin, k.end); });
  return nullptr;
}

// sumOfSquares(grads, threads): the squared global L2 norm of all arrays, accumulated in double per block and the
// blocks summed in order (the same on any thread count).
napi_value SumOfSquares(napi_env env, napi_callback_info info) {
  napi_value args[2];
  if (!callArguments(env, info, "sumOfSquares", 2, args)) return nullptr;
  uint32_t count = 0;
  if (!arrayLength(env, args[0], "grads", &count)) return nullptr;
  std::vector<Tensors> tensors(count);
  for (uint32_t i = 0; i < count; i++) {
    napi_value v;
    float* data = nullptr;
    if (!element(env, args[0], i, &v) || !floatArray(env, v, "grads[" + std::to_string(i) + "]", &data, &tensors[i].size)) return nullptr;
    tensors[i].grad = data;
  }
  std::vector<double> partial(blocksOf(tensors).size(), 0.0);
  overBlocks(env, args[1], tensors, [&](size_t b, const Block& k) {
    const float* g = tensors[k.tensor].grad;
    double sum = 0;
    for (size_t i = k.begin; i < k.end; i++) sum += static_cast<double>(g[i]) * g[i];
    partial[b] = sum;
  });
  double total = 0;
  for (double p : partial) total += p;
  napi_value result;
  napi_create_double(env, total, &result);
  return result;
}

napi_value Init(napi_env env, napi_value exports) {
  const napi_property_descriptor functions[] = {
      {"sgd", nullptr, Sgd, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"adam", nullptr, Adam, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"sumOfSquares", nullptr, SumOfSquares, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"depthwiseWeightGrad", nullptr, DepthwiseWeightGrad, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"convWeightGrad", nullptr, ConvWeightGrad, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"stemForward", nullptr, StemForward, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"stemBackward", nullptr, StemBackward, nullptr, nullptr, nullptr, napi_default, nullptr},
  };
  napi_define_properties(env, exports, sizeof(functions) / sizeof(functions[0]), functions);
  return exports;
}

}  // namespace
}  // namespace deepvision

NAPI_MODULE(NODE_GYP_MODULE_NAME, deepvision::Init)
