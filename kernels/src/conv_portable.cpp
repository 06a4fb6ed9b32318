// The portable row of isa_table.inc: the tiled algorithm on scalars (the compiler may
// vectorise it for the baseline instruction set). Used where no SIMD path exists.
#include "plan.h"

namespace {
struct V {
  static constexpr ep_isa isa = EP_ISA_REF;
  using T = float;
  static constexpr int W = ep::kIsaRows[isa].lanes;
  static T zero() { return 0.f; }
  static T load(const float* p) { return *p; }
  static T bcast(float f) { return f; }
  static T fma(T a, T b, T acc) { return acc + a * b; }
  static void store(float* p, T v) { *p = v; }
};
}  // namespace

#include "tile.inl"
