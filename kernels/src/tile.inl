// The tiled direct sparse convolution, written once over a vector type V. Each ISA source
// file defines V and includes this file; nothing here depends on the instruction set.
//
// V provides: using T; static constexpr int W; zero(), load(p), bcast(f), fma(a, b, acc)
// (acc + a*b), store(p, v).
#include "plan.h"

namespace {

// Local, not std::min: a template instantiated here would carry this file's ISA flags.
inline int imin(int a, int b) { return a < b ? a : b; }

template <int RS, int RT, int NV>
void tile(const ep::Plan& p, const float* xp, int br, int r0, int oh0, int ow0, float* out) {
  typename V::T acc[RS][RT][NV];
  for (int r = 0; r < RS; ++r)
    for (int t = 0; t < RT; ++t)
      for (int n = 0; n < NV; ++n) acc[r][t][n] = V::zero();
  const int64_t row_step = int64_t(p.s.stride_h) * p.wq;
  const float* origin = xp + oh0 * row_step + ow0;
  const int C = p.C, R = p.R;
  for (int32_t b = p.ptr[br]; b < p.ptr[br + 1]; ++b) {
    const int32_t* off = p.offs.data() + int64_t(b) * C;
    const float* v = p.vals.data() + int64_t(b) * C * R + r0;
    for (int c = 0; c < C; ++c) {
      const float* base = origin + off[c];
      typename V::T w[RS];
      for (int r = 0; r < RS; ++r) w[r] = V::bcast(v[c * R + r]);
      for (int t = 0; t < RT; ++t)
        for (int n = 0; n < NV; ++n) {
          typename V::T x = V::load(base + t * row_step + n * V::W);
          for (int r = 0; r < RS; ++r) acc[r][t][n] = V::fma(w[r], x, acc[r][t][n]);
        }
    }
  }
  for (int r = 0; r < RS; ++r)
    for (int t = 0; t < RT; ++t)
      for (int n = 0; n < NV; ++n) V::store(out + (r * RT + t) * NV * V::W + n * V::W, acc[r][t][n]);
}

using TileFn = void (*)(const ep::Plan&, const float*, int, int, int, int, float*);

template <int RS, int RT>
TileFn pick_nv(int nv) {
  return nv == 4 ? tile<RS, RT, 4> : nv == 2 ? tile<RS, RT, 2> : tile<RS, RT, 1>;
}
template <int RS>
TileFn pick_rt(int rt, int nv) {
  return rt == 4 ? pick_nv<RS, 4>(nv) : rt == 2 ? pick_nv<RS, 2>(nv) : pick_nv<RS, 1>(nv);
}
TileFn pick(int rs, int rt, int nv) {
  return rs == 4 ? pick_rt<4>(rt, nv) : rs == 2 ? pick_rt<2>(rt, nv) : pick_rt<1>(rt, nv);
}

struct Job {
  const ep::Plan* p;
  const float* xp;
  float* y;
  int bands;
};

// One task: one block row of output channels over one band of output rows.
void run_task(void* ctx, size_t index) {
  const Job& j = *static_cast<const Job*>(ctx);
  const ep::Plan& p = *j.p;
  const int br = int(index / j.bands);
  const int oh_begin = int(index % j.bands) * p.band;
  const int oh_end = imin(p.oh, oh_begin + p.band);
  const int chunk = p.nv * V::W;
  alignas(64) float out[4 * 4 * 4 * 16];
  for (int r0 = 0; r0 < p.R; r0 += p.rs) {
    for (int oh = oh_begin; oh < oh_end;) {
      const int left = oh_end - oh;
      const int rt = left >= p.rt ? p.rt : left >= 4 ? 4 : left >= 2 ? 2 : 1;
      const TileFn fn = pick(p.rs, imin(rt, p.rt), p.nv);
      for (int ow0 = 0; ow0 < p.ow; ow0 += chunk) {
        fn(p, j.xp, br, r0, oh, ow0, out);
        const int width = imin(chunk, p.ow - ow0);
        for (int r = 0; r < p.rs; ++r) {
          const int co = br * p.R + r0 + r;
          const float b = p.bias[co];
          for (int t = 0; t < rt; ++t) {
            const float* src = out + (r * rt + t) * chunk;
            float* dst = j.y + (int64_t(co) * p.oh + oh + t) * p.ow + ow0;
            for (int i = 0; i < width; ++i) dst[i] = ep::activate(src[i] + b, p.s.act);
          }
        }
      }
      oh += rt;
    }
  }
}

void run_all(const ep::Plan& p, const float* xp, float* y, ep_parallel_for pf, void* runner) {
  Job job{&p, xp, y, (p.oh + p.band - 1) / p.band};
  pf(runner, run_task, &job, size_t(p.block_rows) * job.bands);
}

}  // namespace
