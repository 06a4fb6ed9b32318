// Internal: the activations a convolution fuses into its store. The one definition of each,
// used by the reference, by every instruction-set path and by the ONNX Runtime op names.
#pragma once

#include <cmath>
#include <type_traits>

#include "edgeprune/kernels.h"

// X(value, suffix of its ONNX Runtime op names <Format>Conv<suffix>, its result for input v)
#define EP_ACTIVATIONS(X)                                           \
  X(EP_ACT_NONE, "", v)                                             \
  X(EP_ACT_RELU, "Relu", v > 0.f ? v : 0.f)                         \
  X(EP_ACT_RELU6, "Relu6", v < 0.f ? 0.f : (v > 6.f ? 6.f : v))     \
  X(EP_ACT_SILU, "Silu", v / (1.f + std::exp(-v)))

namespace ep {
namespace {  // internal linkage: each ISA source keeps its own copy, built with its own flags

// Activation A of v; A is a constant, so the switch folds away.
template <ep_act A>
inline float activate(float v) {
  switch (A) {
#define EP_ACT_CASE(value, suffix, result) \
  case value:                              \
    return result;
    EP_ACTIVATIONS(EP_ACT_CASE)
#undef EP_ACT_CASE
  }
  return v;
}

// f(std::integral_constant<ep_act, act>{}): one switch, outside the loop f runs. EP_ACT_NONE
// and values outside the list share the one call after the switch (one copy of f's loop).
template <class F>
inline decltype(auto) with_activation(ep_act act, F&& f) {
  switch (act) {
#define EP_ACT_CASE(value, suffix, result)                                                \
  case value:                                                                             \
    if constexpr (value != EP_ACT_NONE) return f(std::integral_constant<ep_act, value>{}); \
    break;
    EP_ACTIVATIONS(EP_ACT_CASE)
#undef EP_ACT_CASE
  }
  return f(std::integral_constant<ep_act, EP_ACT_NONE>{});
}

// Activation act of v, chosen at run time (the reference, one value at a time).
inline float activate(float v, ep_act act) {
  return with_activation(act, [v](auto a) { return activate<decltype(a)::value>(v); });
}

}  // namespace
}  // namespace ep
