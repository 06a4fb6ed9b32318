// The avx512 row of isa_table.inc: AVX-512F intrinsics (lanes, flags and CPU check are there).
#include <immintrin.h>

#include "plan.h"

namespace {
struct V {
  static constexpr ep_isa isa = EP_ISA_AVX512;
  using T = __m512;
  static constexpr int W = ep::kIsaRows[isa].lanes;
  static T zero() { return _mm512_setzero_ps(); }
  static T load(const float* p) { return _mm512_loadu_ps(p); }
  static T bcast(float f) { return _mm512_set1_ps(f); }
  static T fma(T a, T b, T acc) { return _mm512_fmadd_ps(a, b, acc); }
  static void store(float* p, T v) { _mm512_storeu_ps(p, v); }
};
}  // namespace

#include "tile.inl"
