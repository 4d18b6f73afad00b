// Reading the arguments of a Node-API call, shared by the addon's functions: every failure throws a JavaScript Error
// whose message names the argument, and returns false.
#pragma once

#include <node_api.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <string>

namespace deepvision {

inline bool fail(napi_env env, const std::string& message) {
  napi_throw_error(env, "DEEPVISION_NATIVE_ARGUMENT", message.c_str());
  return false;
}

inline bool floatArray(napi_env env, napi_value value, const std::string& what, float** data, size_t* length) {
  bool isTyped = false;
  if (napi_is_typedarray(env, value, &isTyped) != napi_ok || !isTyped) return fail(env, what + " is not a Float32Array");
  napi_typedarray_type type;
  void* raw = nullptr;
  if (napi_get_typedarray_info(env, value, &type, length, &raw, nullptr, nullptr) != napi_ok || type != napi_float32_array) {
    return fail(env, what + " is not a Float32Array");
  }
  *data = static_cast<float*>(raw);
  return true;
}

// A thread count from a number argument, clamped to 1..256 (1 where it is not a finite number).
inline int threadCount(napi_env env, napi_value value) {
  double n = 1;
  napi_get_value_double(env, value, &n);
  return std::isfinite(n) ? static_cast<int>(std::clamp(n, 1.0, 256.0)) : 1;
}

// Reads exactly `count` arguments of a call to `name`.
inline bool callArguments(napi_env env, napi_callback_info info, const char* name, size_t count, napi_value* args) {
  size_t argc = count;
  napi_get_cb_info(env, info, &argc, args, nullptr, nullptr);
  return argc == count || fail(env, std::string(name) + " takes " + std::to_string(count) + " arguments");
}

}  // namespace deepvision
