// The neon row of isa_table.inc: aarch64 NEON intrinsics (lanes and CPU check are there).
#include <arm_neon.h>

#include "plan.h"

namespace {
struct V {
  static constexpr ep_isa isa = EP_ISA_NEON;
  using T = float32x4_t;
  static constexpr int W = ep::kIsaRows[isa].lanes;
  static T zero() { return vdupq_n_f32(0.f); }
  static T load(const float* p) { return vld1q_f32(p); }
  static T bcast(float f) { return vdupq_n_f32(f); }
  static T fma(T a, T b, T acc) { return vfmaq_f32(acc, a, b); }
  static void store(float* p, T v) { vst1q_f32(p, v); }
};
}  // namespace

#include "tile.inl"
