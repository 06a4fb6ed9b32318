// The avx2 row of isa_table.inc: AVX2 + FMA intrinsics (lanes, flags and CPU check are there).
#include <immintrin.h>

#include "plan.h"

namespace {
struct V {
  static constexpr ep_isa isa = EP_ISA_AVX2;
  using T = __m256;
  static constexpr int W = ep::kIsaRows[isa].lanes;
  static T zero() { return _mm256_setzero_ps(); }
  static T load(const float* p) { return _mm256_loadu_ps(p); }
  static T bcast(float f) { return _mm256_set1_ps(f); }
  static T fma(T a, T b, T acc) { return _mm256_fmadd_ps(a, b, acc); }
  static void store(float* p, T v) { _mm256_storeu_ps(p, v); }
};
}  // namespace

#include "tile.inl"
