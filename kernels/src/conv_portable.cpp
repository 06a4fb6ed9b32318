// Portable path: the tiled algorithm on scalars (the compiler may vectorise it for the
// baseline instruction set). Used where no SIMD path exists.
#include "plan.h"

namespace {
struct V {
  using T = float;
  static constexpr int W = 1;
  static T zero() { return 0.f; }
  static T load(const float* p) { return *p; }
  static T bcast(float f) { return f; }
  static T fma(T a, T b, T acc) { return acc + a * b; }
  static void store(float* p, T v) { *p = v; }
};
}  // namespace

#include "tile.inl"

namespace ep {
void run_portable(const Plan& p, const float* xp, float* y, ep_parallel_for pf, void* runner) {
  run_all(p, xp, y, pf, runner);
}
}  // namespace ep
