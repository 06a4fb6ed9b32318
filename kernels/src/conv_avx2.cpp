// AVX2 + FMA path (8 floats per vector); compiled with -mavx2 -mfma, run only when the CPU has both.
#include <immintrin.h>

#include "plan.h"

namespace {
struct V {
  using T = __m256;
  static constexpr int W = 8;
  static T zero() { return _mm256_setzero_ps(); }
  static T load(const float* p) { return _mm256_loadu_ps(p); }
  static T bcast(float f) { return _mm256_set1_ps(f); }
  static T fma(T a, T b, T acc) { return _mm256_fmadd_ps(a, b, acc); }
  static void store(float* p, T v) { _mm256_storeu_ps(p, v); }
};
}  // namespace

#include "tile.inl"

namespace ep {
void run_avx2(const Plan& p, const float* xp, float* y, ep_parallel_for pf, void* runner) {
  run_all(p, xp, y, pf, runner);
}
}  // namespace ep
