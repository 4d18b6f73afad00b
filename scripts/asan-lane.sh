#!/usr/bin/env bash
# The native fast path under AddressSanitizer: builds it with -fsanitize=address and runs its suite with the ASan
# runtime preloaded into Node, so that an out-of-bounds write or a use after free in src/native fails the tests
# instead of corrupting a training run. Skipped (with a line saying so) where the compiler has no ASan runtime.
set -euo pipefail
cd "$(dirname "$0")/.."
runtime="$(${CXX:-c++} -print-file-name=libasan.so)"
if [ ! -e "$runtime" ]; then
  echo "note: no AddressSanitizer runtime ($runtime): the ASan lane is skipped"
  exit 0
fi
node scripts/build-native.mjs --sanitize
# Node itself is not instrumented: its own allocations are not leaks to report.
LD_PRELOAD="$runtime" ASAN_OPTIONS=detect_leaks=0 DEEPVISION_NATIVE_ADDON=build/deepvision-native-asan.node npx jest test/fused-optimizer.test.ts test/weight-grads.test.ts test/conv-stem.test.ts
