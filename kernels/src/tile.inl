// The tiled direct sparse convolution, written once over a vector type V. Each ISA source
// file defines V and includes this file; nothing here depends on the instruction set.
//
// V provides: static constexpr ep_isa isa (its isa_table.inc row); using T; static constexpr
// int W (that row's lanes); zero(), load(p), bcast(f), fma(a, b, acc) (acc + a*b), store(p, v).
#include "activation.h"
#include "plan.h"

static_assert(sizeof(V::T) == V::W * sizeof(float), "V::T must hold its isa_table.inc row's lanes");

namespace {

// Local, not std::min: a template instantiated here would carry this file's ISA flags.
inline int imin(int a, int b) { return a < b ? a : b; }

// Blocks [b0, b1) of one block row applied to RT output rows x NV vectors of columns, for RS
// rows of the block starting at r0; adds to the partial sums in out when accumulate is set.
template <int RS, int RT, int NV, bool UNIT_C>
void tile(const ep::Plan& p, const float* xp, int r0, int oh0, int ow0, int32_t b0, int32_t b1, float* out,
          bool accumulate) {
  typename V::T acc[RS][RT][NV];
  for (int r = 0; r < RS; ++r)
    for (int t = 0; t < RT; ++t)
      for (int n = 0; n < NV; ++n)
        acc[r][t][n] = accumulate ? V::load(out + (r * RT + t) * NV * V::W + n * V::W) : V::zero();
  // One base pointer per output row, so each load is base + offset*4 + constant: an addressing
  // mode, with no address arithmetic inside the loop.
  const int64_t row_step = p.wq;  // output rows read consecutive rows of a row phase (plan.h)
  const float* rows[RT];
  for (int t = 0; t < RT; ++t) rows[t] = xp + (oh0 + t) * row_step + ow0;
  const int C = UNIT_C ? 1 : p.C, R = p.R;
  const int32_t* offs = p.offs.data();
  const float* vals = p.vals.data();
  for (int32_t b = b0; b < b1; ++b) {
    const int32_t* off = offs + int64_t(b) * C;
    const float* v = vals + int64_t(b) * C * R + r0;
    for (int c = 0; c < C; ++c) {
      const int64_t o = off[c];
      typename V::T w[RS];
      for (int r = 0; r < RS; ++r) w[r] = V::bcast(v[c * R + r]);
      for (int t = 0; t < RT; ++t)
        for (int n = 0; n < NV; ++n) {
          typename V::T x = V::load(rows[t] + o + n * V::W);
          for (int r = 0; r < RS; ++r) acc[r][t][n] = V::fma(w[r], x, acc[r][t][n]);
        }
    }
  }
  for (int r = 0; r < RS; ++r)
    for (int t = 0; t < RT; ++t)
      for (int n = 0; n < NV; ++n) V::store(out + (r * RT + t) * NV * V::W + n * V::W, acc[r][t][n]);
}

using TileFn = void (*)(const ep::Plan&, const float*, int, int, int, int32_t, int32_t, float*, bool);

template <int RS, int RT, bool U>
TileFn pick_nv(int nv) {
  return nv == 4 ? tile<RS, RT, 4, U> : nv == 2 ? tile<RS, RT, 2, U> : tile<RS, RT, 1, U>;
}
template <int RS, bool U>
TileFn pick_rt(int rt, int nv) {
  return rt == 8   ? pick_nv<RS, 8, U>(nv)
         : rt == 4 ? pick_nv<RS, 4, U>(nv)
         : rt == 2 ? pick_nv<RS, 2, U>(nv)
                   : pick_nv<RS, 1, U>(nv);
}
template <bool U>
TileFn pick_rs(int rs, int rt, int nv) {
  return rs == 4 ? pick_rt<4, U>(rt, nv) : rs == 2 ? pick_rt<2, U>(rt, nv) : pick_rt<1, U>(rt, nv);
}
// C == 1 (CSR, N:M, and column-1 blocks) drops the inner column loop.
TileFn pick(int rs, int rt, int nv, int c) { return c == 1 ? pick_rs<true>(rs, rt, nv) : pick_rs<false>(rs, rt, nv); }

struct Job {
  const ep::Plan* p;
  const float* xp;
  float* y;
  int groups;
};

void epilogue(float* dst, const float* src, int n, float b, ep_act act) {
  ep::with_activation(act, [=](auto a) {
    for (int i = 0; i < n; ++i) dst[i] = ep::activate<decltype(a)::value>(src[i] + b);
  });
}

// One task: one band of output rows for a group of block rows; consecutive tasks share the
// band, so a thread keeps the input rows of its band in cache while it walks the channels.
void run_task(void* ctx, size_t index) {
  const Job& j = *static_cast<const Job*>(ctx);
  const ep::Plan& p = *j.p;
  const int oh_begin = int(index / j.groups) * p.band;
  const int oh_end = imin(p.oh, oh_begin + p.band);
  const int br_begin = int(index % j.groups) * p.group;
  const int br_end = imin(p.block_rows, br_begin + p.group);
  const int chunk = p.nv * V::W;
  alignas(64) float out[4 * 8 * 4 * V::W];  // the largest tile: rs 4 x rt 8 x nv 4 vectors
  for (int oh = oh_begin; oh < oh_end;) {
    const int left = oh_end - oh;  // rows left: the largest power of two that fits
    const int rows = left >= p.rt ? p.rt : left >= 4 ? 4 : left >= 2 ? 2 : 1;
    const TileFn fn = pick(p.rs, rows, p.nv, p.C);
    for (int br = br_begin; br < br_end; ++br)
      for (int r0 = 0; r0 < p.R; r0 += p.rs)
        for (int ow0 = 0; ow0 < p.ow; ow0 += chunk) {
          fn(p, j.xp, r0, oh, ow0, p.ptr[br], p.ptr[br + 1], out, false);
          for (int r = 0; r < p.rs; ++r) {
            const int co = br * p.R + r0 + r;
            for (int t = 0; t < rows; ++t) {
              const int row_width = oh + t == p.oh - 1 ? p.last_row_width : p.ow;
              const int width = imin(chunk, row_width - ow0);
              if (width > 0)
                epilogue(j.y + co * p.out_plane + int64_t(oh + t) * p.out_row_stride + ow0,
                         out + (r * rows + t) * chunk, width, p.bias[co], p.s.act);
            }
          }
        }
    oh += rows;
  }
}

void run_all(const ep::Plan& p, const float* xp, float* y, ep_parallel_for pf, void* runner) {
  Job job{&p, xp, y, (p.block_rows + p.group - 1) / p.group};
  const int bands = (p.oh + p.band - 1) / p.band;
  pf(runner, run_task, &job, size_t(bands) * job.groups);
}

}  // namespace

namespace ep {
// This file's row: a full specialization is an ordinary function, defined here only.
template <>
void run<V::isa>(const Plan& p, const float* xp, float* y, ep_parallel_for pf, void* runner) {
  run_all(p, xp, y, pf, runner);
}
}  // namespace ep
