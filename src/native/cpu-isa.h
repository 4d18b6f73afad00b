// Which instruction-set build of a native kernel this CPU runs: shared by the kernels that have several builds
// (conv-stem.cc, conv-weight-grad.cc), so that DEEPVISION_NATIVE_ISA means the same for all of them.
#pragma once

#include <cstdlib>
#include <string>

namespace deepvision {

enum class Isa { kBaseline, kAvx2, kAvx512 };

// The widest instruction set this CPU runs (AVX2 and AVX-512 each with FMA), at most the one DEEPVISION_NATIVE_ISA
// names (avx2 or baseline: tests compare the builds).
inline Isa widestIsa() {
  const char* wanted = std::getenv("DEEPVISION_NATIVE_ISA");
  const std::string cap = wanted == nullptr ? "" : wanted;
  if (cap == "baseline") return Isa::kBaseline;
#if defined(__GNUC__) && defined(__x86_64__)
  __builtin_cpu_init();
  if (cap != "avx2" && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma")) return Isa::kAvx512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return Isa::kAvx2;
#endif
  return Isa::kBaseline;
}

}  // namespace deepvision
