// Plan construction, input preparation, validation, the reference and the C ABI.
#include <algorithm>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>

#include "activation.h"
#include "plan.h"

namespace ep {

static thread_local std::string g_error;

void set_error(const char* fmt, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  g_error = buf;
}

void finish_plan(Plan& p, int vw, int acc) {
  const ep_conv_shape& s = p.s;
  const int nvec = (p.ow + vw - 1) / vw;
  p.nv = nvec >= 4 ? 4 : nvec >= 2 ? 2 : 1;
  p.rs = p.R % 4 == 0 ? 4 : p.R % 2 == 0 ? 2 : 1;
  while (p.rs * p.nv > acc && p.nv > 1) p.nv /= 2;
  p.rt = 1;
  while (p.rt < 8 && p.rs * p.rt * 2 * p.nv <= acc) p.rt *= 2;
  const int chunk = p.nv * vw;
  const int chunks = (p.ow + chunk - 1) / chunk;
  p.hp = (s.in_h + s.pad_t + s.pad_b + s.stride_h - 1) / s.stride_h;  // rows of one row phase
  const int span_w = s.in_w + s.pad_l + s.pad_r;
  const int q_extra = ((s.kw - 1) * s.dil_w) / s.stride_w;
  p.wq = std::max((span_w + s.stride_w - 1) / s.stride_w, chunks * chunk + q_extra) + 1;
  if (p.flat_hw) p.wq = s.in_w;  // rows of whole vectors, contiguous: the plane as it is
  p.phase_stride = int64_t(s.in_c) * p.hp * p.wq;
  p.image_stride = p.phase_stride * s.stride_w * s.stride_h;
  p.row_phase_used.assign(s.stride_h, 0);
  p.col_phase_used.assign(s.stride_w, 0);
  for (int r = 0; r < s.kh; ++r) p.row_phase_used[(r * s.dil_h) % s.stride_h] = 1;
  for (int c = 0; c < s.kw; ++c) p.col_phase_used[(c * s.dil_w) % s.stride_w] = 1;
  // Bands of one row tile; channel groups big enough that a task is worth scheduling.
  p.band = p.rt;
  p.group = std::max(1, std::min(p.block_rows, 16 / p.R));
}

namespace {

struct PrepJob {
  const Plan* p;
  const float* x;
  float* xp;
};

void prepare_channel(void* ctx, size_t index) {
  const PrepJob& j = *static_cast<const PrepJob*>(ctx);
  const Plan& p = *j.p;
  const ep_conv_shape& s = p.s;
  const int n = int(index / s.in_c), c = int(index % s.in_c);
  if (p.flat_hw) {  // pointwise: the plane as it is, zero-padded to whole rows
    float* dst = j.xp + n * p.image_stride + int64_t(c) * p.hp * p.wq;
    std::memcpy(dst, j.x + (int64_t(n) * s.in_c + c) * p.flat_hw, sizeof(float) * p.flat_hw);
    std::memset(dst + p.flat_hw, 0, sizeof(float) * (int64_t(p.hp) * p.wq - p.flat_hw));
    return;
  }
  const float* src = j.x + (int64_t(n) * s.in_c + c) * s.in_h * s.in_w;
  // One padded input row (pad_l zeros, the row, zeros to the last column a phase reads), split
  // into the column phases: a contiguous copy, then loops the compiler vectorises.
  static thread_local std::vector<float> padded;
  const int64_t span = int64_t(p.wq) * s.stride_w + s.stride_w;
  if (s.stride_w > 1) padded.assign(span, 0.f);
  for (int pr = 0; pr < s.stride_h; ++pr) {
    if (!p.row_phase_used[pr]) continue;
    const auto plane = [&](int ph) {
      return j.xp + n * p.image_stride + (int64_t(ph) * s.stride_h + pr) * p.phase_stride +
             int64_t(c) * p.hp * p.wq;
    };
    for (int h = 0; h < p.hp; ++h) {  // row phase pr holds padded row h*stride_h + pr at h
      const int ih = h * s.stride_h + pr - s.pad_t;
      if (ih < 0 || ih >= s.in_h) {
        for (int ph = 0; ph < s.stride_w; ++ph)
          if (p.col_phase_used[ph]) std::memset(plane(ph) + int64_t(h) * p.wq, 0, sizeof(float) * p.wq);
        continue;
      }
      const float* in = src + int64_t(ih) * s.in_w;
      if (s.stride_w == 1) {  // the row itself between its zero pads, without the padded copy
        float* d = plane(0) + int64_t(h) * p.wq;
        const int left = std::min(s.pad_l, p.wq), width = std::min(s.in_w, p.wq - left);
        std::memset(d, 0, sizeof(float) * left);
        std::memcpy(d + left, in, sizeof(float) * width);
        std::memset(d + left + width, 0, sizeof(float) * (p.wq - left - width));
        continue;
      }
      const int64_t width = std::min<int64_t>(s.in_w, span - s.pad_l);  // the columns a phase reads
      if (width > 0) std::memcpy(padded.data() + s.pad_l, in, sizeof(float) * width);
      const float* row = padded.data();
      if (s.stride_w == 2 && p.col_phase_used[0] && p.col_phase_used[1]) {
        float* even = plane(0) + int64_t(h) * p.wq;
        float* odd = plane(1) + int64_t(h) * p.wq;
        for (int q = 0; q < p.wq; ++q) {
          even[q] = row[2 * q];
          odd[q] = row[2 * q + 1];
        }
      } else {
        for (int ph = 0; ph < s.stride_w; ++ph) {
          if (!p.col_phase_used[ph]) continue;
          float* d = plane(ph) + int64_t(h) * p.wq;
          for (int q = 0; q < p.wq; ++q) d[q] = row[int64_t(q) * s.stride_w + ph];
        }
      }
    }
  }
}

int64_t k_of(const ep_conv_shape& s) { return int64_t(s.in_c) * s.kh * s.kw; }

// Column k in PyTorch order (ci, r, s) to its offset in one image's prepared input.
int32_t offset_of(const Plan& p, int64_t k) {
  const ep_conv_shape& s = p.s;
  const int kk = s.kh * s.kw;
  const int ci = int(k / kk), r = int(k % kk) / s.kw, c = int(k % s.kw);
  const int row = r * s.dil_h, col = c * s.dil_w;
  const int64_t plane = int64_t(col % s.stride_w) * s.stride_h + row % s.stride_h;
  return int32_t(plane * p.phase_stride + int64_t(ci) * p.hp * p.wq + int64_t(row / s.stride_h) * p.wq +
                 col / s.stride_w);
}

// Channel-last N:M column k' = (r*kw + s)*in_c + ci to the PyTorch column.
int64_t nm_to_k(const ep_conv_shape& s, int64_t kp) {
  const int ci = int(kp % s.in_c);
  const int64_t rs = kp / s.in_c;
  return int64_t(ci) * s.kh * s.kw + rs;
}

void densify(const ep_conv_shape& s, const ep_sparse_weight& w, std::vector<float>& dense) {
  const int64_t K = k_of(s);
  dense.assign(size_t(s.out_c) * K, 0.f);
  if (w.fmt == EP_FMT_CSR) {
    for (int o = 0; o < s.out_c; ++o)
      for (int32_t j = w.ptr[o]; j < w.ptr[o + 1]; ++j) dense[o * K + w.indices[j]] += w.values[j];
  } else if (w.fmt == EP_FMT_BSR) {
    const int R = w.block_r, C = w.block_c;
    for (int br = 0; br < s.out_c / R; ++br)
      for (int32_t b = w.ptr[br]; b < w.ptr[br + 1]; ++b)
        for (int r = 0; r < R; ++r)
          for (int c = 0; c < C; ++c)
            dense[(int64_t(br) * R + r) * K + int64_t(w.indices[b]) * C + c] += w.values[(int64_t(b) * R + r) * C + c];
  } else {
    const int64_t per_row = K / w.m * w.n;
    for (int o = 0; o < s.out_c; ++o)
      for (int64_t j = 0; j < per_row; ++j) {
        const int64_t kp = (j / w.n) * w.m + w.nm_idx[o * per_row + j];
        dense[o * K + nm_to_k(s, kp)] += w.values[o * per_row + j];
      }
  }
}

}  // namespace

void prepare_input(const Plan& p, const float* x, float* xp, ep_parallel_for pf, void* runner) {
  PrepJob job{&p, x, xp};
  pf(runner, prepare_channel, &job, size_t(p.s.batch) * p.s.in_c);
}

static int validate(const ep_conv_shape* s, const ep_sparse_weight* w) {
  if (!s || !w || (!w->values && w->nnz)) return set_error("null argument"), -1;
  if (s->batch < 1 || s->in_c < 1 || s->in_h < 1 || s->in_w < 1 || s->out_c < 1 || s->kh < 1 || s->kw < 1 ||
      s->stride_h < 1 || s->stride_w < 1 || s->dil_h < 1 || s->dil_w < 1 || s->pad_t < 0 || s->pad_l < 0 ||
      s->pad_b < 0 || s->pad_r < 0)
    return set_error("invalid convolution shape"), -1;
  if (ep_conv_out_h(s) < 1 || ep_conv_out_w(s) < 1) return set_error("kernel larger than the padded input"), -1;
  const int64_t K = k_of(*s);
  if (w->fmt == EP_FMT_CSR || w->fmt == EP_FMT_BSR) {
    const int R = w->fmt == EP_FMT_BSR ? w->block_r : 1, C = w->fmt == EP_FMT_BSR ? w->block_c : 1;
    if (R < 1 || C < 1 || s->out_c % R || K % C)
      return set_error("block %dx%d does not tile a %d x %lld weight", R, C, s->out_c, (long long)K), -1;
    if ((!w->indices && w->nnz) || !w->ptr) return set_error("null indices"), -1;
    const int rows = s->out_c / R;
    if (w->ptr[0] != 0 || w->ptr[rows] != w->nnz) return set_error("row pointers do not span the values"), -1;
    for (int r = 0; r < rows; ++r)
      if (w->ptr[r + 1] < w->ptr[r]) return set_error("row pointers decrease at row %d", r), -1;
    for (int64_t j = 0; j < w->nnz; ++j)
      if (w->indices[j] < 0 || w->indices[j] >= K / C) return set_error("column index %d out of range", w->indices[j]), -1;
  } else if (w->fmt == EP_FMT_NM) {
    if (w->n < 1 || w->m <= w->n || s->in_c % w->m) return set_error("N:M %d:%d does not fit %d input channels", w->n, w->m, s->in_c), -1;
    if ((!w->nm_idx && w->nnz) || w->nnz != s->out_c * (K / w->m) * w->n) return set_error("N:M value count mismatch"), -1;
    for (int64_t j = 0; j < w->nnz; ++j)
      if (w->nm_idx[j] >= w->m) return set_error("N:M index %d out of range", w->nm_idx[j]), -1;
  } else {
    return set_error("unknown format %d", int(w->fmt)), -1;
  }
  return 0;
}

static Plan* build(const ep_conv_shape* s, const ep_sparse_weight* w, const float* bias, ep_isa isa) {
  auto* p = new (std::nothrow) Plan();
  if (!p) return set_error("out of memory"), nullptr;
  p->s = *s;
  p->isa = isa;
  p->oh = ep_conv_out_h(s);
  p->ow = ep_conv_out_w(s);
  p->out_plane = int64_t(p->oh) * p->ow;
  p->out_row_stride = p->ow;
  p->last_row_width = p->ow;
  const int vw = kIsaRows[isa].lanes;
  const int width = 2 * std::max(vw, 4);  // two vectors (the portable path: two NEON-sized ones)
  const bool pointwise = s->kh == 1 && s->kw == 1 && s->stride_h == 1 && s->stride_w == 1 && s->pad_t == 0 &&
                         s->pad_l == 0 && s->pad_b == 0 && s->pad_r == 0;
  if (pointwise && int64_t(s->in_h) * s->in_w > width) {
    // Re-shape the plane into rows of two vectors: every lane does work, one memcpy per channel.
    p->flat_hw = int64_t(s->in_h) * s->in_w;
    p->s.in_w = width;
    p->s.in_h = int((p->flat_hw + width - 1) / width);
    p->oh = p->s.in_h;
    p->ow = width;
    p->out_row_stride = width;
    p->last_row_width = int(p->flat_hw - int64_t(p->oh - 1) * width);
    p->direct = p->flat_hw % width == 0;
  }
  p->bias.assign(s->out_c, 0.f);
  if (bias) std::copy(bias, bias + s->out_c, p->bias.begin());
  if (w->fmt == EP_FMT_BSR) {
    p->R = w->block_r;
    p->C = w->block_c;
  }
  p->block_rows = s->out_c / p->R;
  finish_plan(*p, vw, kIsaRows[isa].accumulators);
  const int64_t K = k_of(*s);
  if (w->fmt == EP_FMT_NM) {
    // N:M runs as CSR: each kept value becomes one column of its row.
    const int64_t per_row = K / w->m * w->n;
    p->ptr.resize(s->out_c + 1);
    for (int o = 0; o <= s->out_c; ++o) p->ptr[o] = int32_t(o * per_row);
    p->vals.assign(w->values, w->values + w->nnz);
    p->offs.resize(w->nnz);
    for (int o = 0; o < s->out_c; ++o)
      for (int64_t j = 0; j < per_row; ++j)
        p->offs[o * per_row + j] = offset_of(*p, nm_to_k(*s, (j / w->n) * w->m + w->nm_idx[o * per_row + j]));
  } else {
    const int R = p->R, C = p->C;
    p->ptr.assign(w->ptr, w->ptr + p->block_rows + 1);
    p->offs.resize(w->nnz * C);
    p->vals.resize(w->nnz * C * R);
    for (int64_t b = 0; b < w->nnz; ++b)
      for (int c = 0; c < C; ++c) {
        p->offs[b * C + c] = offset_of(*p, int64_t(w->indices[b]) * C + c);
        for (int r = 0; r < R; ++r) p->vals[(b * C + c) * R + r] = w->values[(b * R + r) * C + c];
      }
  }
  return p;
}

static RunFn run_of(ep_isa isa) {
  switch (isa) {
#define EP_ISA_ROW(id, name, arch, lanes, acc, flags, check) EP_IF_BUILT_##arch(case id: return run<id>;)
#include "isa_table.inc"
#undef EP_ISA_ROW
    default: return run<EP_ISA_REF>;
  }
}

// The row of isa, or nullptr for a value outside the table.
static const IsaRow* row_of(int isa) { return isa >= 0 && isa < kIsaCount ? &kIsaRows[isa] : nullptr; }

}  // namespace ep

using namespace ep;

struct ep_plan {
  Plan* plan;
};

extern "C" {

int ep_abi_version(void) { return EP_ABI_VERSION; }
const char* ep_last_error(void) { return g_error.c_str(); }

const char* ep_isa_name(ep_isa isa) {
  const IsaRow* row = row_of(isa);
  return row ? row->name : "unknown";
}

int ep_isa_available(ep_isa isa) {
  switch (isa) {
#define EP_ISA_ROW(id, name, arch, lanes, acc, flags, check) EP_IF_BUILT_##arch(case id: return (check);)
#include "isa_table.inc"
#undef EP_ISA_ROW
    default: return 0;
  }
}

int ep_select_isa(void) {
  const char* forced = std::getenv("EDGEPRUNE_ISA");
  if (forced && *forced) {
    for (const IsaRow& row : kIsaRows)
      if (std::strcmp(forced, row.name) == 0) {
        if (ep_isa_available(row.id)) return row.id;
        set_error("EDGEPRUNE_ISA=%s: this CPU or this build has no %s path", forced, forced);
        return -1;
      }
    // ", portable, avx2, ..." from the table; the message skips the leading ", ".
    static const char names[] =
#define EP_ISA_ROW(id, name, ...) ", " name
#include "isa_table.inc"
#undef EP_ISA_ROW
        ;
    set_error("EDGEPRUNE_ISA=%s is not one of %s", forced, names + 2);
    return -1;
  }
  for (int i = kIsaCount - 1; i > EP_ISA_REF; --i)
    if (ep_isa_available(kIsaRows[i].id)) return kIsaRows[i].id;
  return EP_ISA_REF;
}

// Output extent; 0 when the dilated kernel is larger than the padded input.
static int out_extent(int in, int pad, int k, int dil, int stride) {
  const int span = in + pad - dil * (k - 1) - 1;
  return span < 0 ? 0 : span / stride + 1;
}
int ep_conv_out_h(const ep_conv_shape* s) { return out_extent(s->in_h, s->pad_t + s->pad_b, s->kh, s->dil_h, s->stride_h); }
int ep_conv_out_w(const ep_conv_shape* s) { return out_extent(s->in_w, s->pad_l + s->pad_r, s->kw, s->dil_w, s->stride_w); }

int ep_conv_reference(const ep_conv_shape* s, const ep_sparse_weight* w, const float* bias, const float* x,
                      float* y) {
  if (validate(s, w)) return -1;
  std::vector<float> dense;
  densify(*s, *w, dense);
  const int oh = ep_conv_out_h(s), ow = ep_conv_out_w(s);
  const int64_t K = k_of(*s);
  for (int n = 0; n < s->batch; ++n)
    for (int o = 0; o < s->out_c; ++o)
      for (int i = 0; i < oh; ++i)
        for (int j = 0; j < ow; ++j) {
          double acc = bias ? bias[o] : 0.0;
          for (int c = 0; c < s->in_c; ++c)
            for (int r = 0; r < s->kh; ++r)
              for (int q = 0; q < s->kw; ++q) {
                const int ih = i * s->stride_h - s->pad_t + r * s->dil_h;
                const int iw = j * s->stride_w - s->pad_l + q * s->dil_w;
                if (ih < 0 || ih >= s->in_h || iw < 0 || iw >= s->in_w) continue;
                acc += double(dense[o * K + (int64_t(c) * s->kh + r) * s->kw + q]) *
                       x[((int64_t(n) * s->in_c + c) * s->in_h + ih) * s->in_w + iw];
              }
          y[((int64_t(n) * s->out_c + o) * oh + i) * ow + j] = activate(float(acc), s->act);
        }
  return 0;
}

ep_plan* ep_plan_create(const ep_conv_shape* s, const ep_sparse_weight* w, const float* bias, ep_isa isa) {
  if (validate(s, w)) return nullptr;
  if (!ep_isa_available(isa)) return set_error("instruction set %s is not available", ep_isa_name(isa)), nullptr;
  Plan* p = build(s, w, bias, isa);
  if (!p) return nullptr;
  return new ep_plan{p};
}

static void serial_for(void*, ep_task_fn fn, void* ctx, size_t n) {
  for (size_t i = 0; i < n; ++i) fn(ctx, i);
}

void ep_plan_run(const ep_plan* h, const float* x, float* y, ep_parallel_for pf, void* runner) {
  const Plan& p = *h->plan;
  if (!pf) pf = serial_for;
  // One prepared-input buffer per calling thread, reused across calls.
  const float* xp = x;
  if (!p.direct) {
    static thread_local std::vector<float> buffer;
    const size_t need = size_t(p.image_stride) * p.s.batch + 16;
    if (buffer.size() < need) buffer.resize(need);
    float* prepared = buffer.data();
    prepared += (16 - (reinterpret_cast<uintptr_t>(prepared) / sizeof(float)) % 16) % 16;  // 64-byte aligned
    prepare_input(p, x, prepared, pf, runner);
    xp = prepared;
  }
  const RunFn run = run_of(p.isa);
  const int64_t out_image = int64_t(p.s.out_c) * p.out_plane;
  for (int n = 0; n < p.s.batch; ++n) run(p, xp + n * p.image_stride, y + n * out_image, pf, runner);
}

void ep_plan_destroy(ep_plan* h) {
  if (!h) return;
  delete h->plan;
  delete h;
}

}  // extern "C"
