// AVX-512F path (16 floats per vector); compiled with -mavx512f, run only when the CPU has it.
#include <immintrin.h>

#include "plan.h"

namespace {
struct V {
  using T = __m512;
  static constexpr int W = 16;
  static T zero() { return _mm512_setzero_ps(); }
  static T load(const float* p) { return _mm512_loadu_ps(p); }
  static T bcast(float f) { return _mm512_set1_ps(f); }
  static T fma(T a, T b, T acc) { return _mm512_fmadd_ps(a, b, acc); }
  static void store(float* p, T v) { _mm512_storeu_ps(p, v); }
};
}  // namespace

#include "tile.inl"

namespace ep {
void run_avx512(const Plan& p, const float* xp, float* y, ep_parallel_for pf, void* runner) {
  run_all(p, xp, y, pf, runner);
}
}  // namespace ep
