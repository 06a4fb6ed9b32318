// NEON path for aarch64 (4 floats per vector); every ARMv8-A CPU has it.
#include <arm_neon.h>

#include "plan.h"

namespace {
struct V {
  using T = float32x4_t;
  static constexpr int W = 4;
  static T zero() { return vdupq_n_f32(0.f); }
  static T load(const float* p) { return vld1q_f32(p); }
  static T bcast(float f) { return vdupq_n_f32(f); }
  static T fma(T a, T b, T acc) { return vfmaq_f32(acc, a, b); }
  static void store(float* p, T v) { vst1q_f32(p, v); }
};
}  // namespace

#include "tile.inl"

namespace ep {
void run_neon(const Plan& p, const float* xp, float* y, ep_parallel_for pf, void* runner) {
  run_all(p, xp, y, pf, runner);
}
}  // namespace ep
