// Every instruction-set path this CPU (or qemu) can run, against the portable reference, on
// random shapes, densities, formats and activations. Prints one line per failure and a
// closing "N passed, M failed" line; exit status 1 on any failure.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <thread>
#include <vector>

#include "edgeprune/kernels.h"

namespace {

struct Sparse {
  std::vector<float> values;
  std::vector<int32_t> indices, ptr;
  std::vector<uint8_t> nm_idx;
  ep_sparse_weight w{};
};

// A random weight of the given density in the given format (block sizes and N:M from s).
Sparse make(std::mt19937& g, const ep_conv_shape& s, ep_format fmt, double density, int br, int bc, int n, int m) {
  std::uniform_real_distribution<float> val(-1.f, 1.f), u(0.f, 1.f);
  const int K = s.in_c * s.kh * s.kw;
  Sparse sp;
  sp.w.fmt = fmt;
  if (fmt == EP_FMT_NM) {
    const int per_row = K / m * n;
    for (int o = 0; o < s.out_c; ++o)
      for (int grp = 0; grp < K / m; ++grp) {
        std::vector<int> pos(m);
        for (int i = 0; i < m; ++i) pos[i] = i;
        std::shuffle(pos.begin(), pos.end(), g);
        for (int i = 0; i < n; ++i) {
          sp.values.push_back(val(g));
          sp.nm_idx.push_back(uint8_t(pos[i]));
        }
      }
    sp.w.n = n;
    sp.w.m = m;
    sp.w.nnz = int64_t(s.out_c) * per_row;
  } else {
    const int R = fmt == EP_FMT_BSR ? br : 1, C = fmt == EP_FMT_BSR ? bc : 1;
    sp.ptr.push_back(0);
    for (int r = 0; r < s.out_c / R; ++r) {
      for (int c = 0; c < K / C; ++c)
        if (u(g) < density) {
          sp.indices.push_back(c);
          for (int i = 0; i < R * C; ++i) sp.values.push_back(val(g));
        }
      sp.ptr.push_back(int32_t(sp.indices.size()));
    }
    sp.w.block_r = R;
    sp.w.block_c = C;
    sp.w.nnz = int64_t(sp.indices.size());
  }
  sp.w.values = sp.values.data();
  sp.w.indices = sp.indices.data();
  sp.w.ptr = sp.ptr.data();
  sp.w.nm_idx = sp.nm_idx.data();
  return sp;
}

void threaded_for(void*, ep_task_fn fn, void* ctx, size_t n) {
  std::vector<std::thread> pool;
  for (int t = 0; t < 3; ++t)
    pool.emplace_back([=] {
      for (size_t i = t; i < n; i += 3) fn(ctx, i);
    });
  for (auto& th : pool) th.join();
}

}  // namespace

int main(int argc, char** argv) {
  const int cases = argc > 1 ? std::atoi(argv[1]) : 150;
  std::mt19937 g(1234);
  auto pick = [&](std::initializer_list<int> xs) { return *(xs.begin() + std::uniform_int_distribution<size_t>(0, xs.size() - 1)(g)); };
  int passed = 0, failed = 0;
  for (int isa = EP_ISA_REF; isa <= EP_ISA_NEON; ++isa) {
    if (!ep_isa_available(ep_isa(isa))) {
      std::printf("skip %s: not available here\n", ep_isa_name(ep_isa(isa)));
      continue;
    }
    for (int k = 0; k < cases; ++k) {
      ep_conv_shape s{};
      const ep_format fmt = ep_format(k % 3);
      s.batch = pick({1, 1, 2});
      s.in_c = fmt == EP_FMT_NM ? pick({4, 8, 16}) : pick({1, 3, 8, 16});
      s.out_c = pick({1, 4, 8, 12});
      s.kh = pick({1, 3, 5});
      s.kw = pick({1, 3});
      s.stride_h = pick({1, 2});
      s.stride_w = pick({1, 2, 3});
      s.dil_h = pick({1, 2});
      s.dil_w = pick({1, 1, 2});
      s.pad_t = pick({0, 1, 2});
      s.pad_l = pick({0, 1});
      s.pad_b = pick({0, 1});
      s.pad_r = pick({0, 2});
      s.in_h = pick({1, 5, 9, 14, 17});
      s.in_w = pick({1, 7, 14, 23, 40, 70});
      s.act = ep_act(k % 4);
      if (k % 5 == 4) {  // pointwise layers take their own (flattened) route
        s.kh = s.kw = s.stride_h = s.stride_w = 1;
        s.pad_t = s.pad_l = s.pad_b = s.pad_r = 0;
        if (k % 10 == 9) {  // H*W a whole number of rows of every vector width: read in place
          s.in_h = 8;
          s.in_w = 16;
        }
      }
      if (ep_conv_out_h(&s) < 1 || ep_conv_out_w(&s) < 1) continue;
      const int K = s.in_c * s.kh * s.kw;
      const int br = fmt == EP_FMT_BSR ? (s.out_c % 4 == 0 ? pick({1, 2, 4}) : 1) : 1;
      const int bc = fmt == EP_FMT_BSR ? (K % 2 == 0 ? pick({1, 2}) : 1) : 1;
      const double density = std::uniform_real_distribution<double>(0.0, 0.6)(g);
      Sparse sp = make(g, s, fmt, density, br, bc, 2, 4);
      std::vector<float> x(size_t(s.batch) * s.in_c * s.in_h * s.in_w), bias(s.out_c);
      std::uniform_real_distribution<float> u(-3.f, 3.f);
      for (auto& v : x) v = u(g);
      for (auto& v : bias) v = u(g);
      const size_t ny = size_t(s.batch) * s.out_c * ep_conv_out_h(&s) * ep_conv_out_w(&s);
      std::vector<float> want(ny), got(ny, NAN);
      if (ep_conv_reference(&s, &sp.w, bias.data(), x.data(), want.data())) {
        std::printf("FAIL reference rejected case %d: %s\n", k, ep_last_error());
        ++failed;
        continue;
      }
      ep_plan* p = ep_plan_create(&s, &sp.w, bias.data(), ep_isa(isa));
      if (!p) {
        std::printf("FAIL %s case %d: %s\n", ep_isa_name(ep_isa(isa)), k, ep_last_error());
        ++failed;
        continue;
      }
      ep_plan_run(p, x.data(), got.data(), k % 2 ? threaded_for : nullptr, nullptr);
      ep_plan_destroy(p);
      double worst = 0;
      for (size_t i = 0; i < ny; ++i) {
        const double err = std::fabs(double(got[i]) - want[i]) / (1e-5 + 1e-4 * std::fabs(want[i]));
        if (!(err <= worst)) worst = std::isnan(err) ? INFINITY : std::max(worst, err);
      }
      if (worst > 1.0) {
        std::printf("FAIL %s fmt=%d case %d: in %dx%dx%d out %d k %dx%d s %d,%d d %d,%d p %d,%d,%d,%d act %d (error %.3g of tolerance)\n",
                    ep_isa_name(ep_isa(isa)), int(fmt), k, s.in_c, s.in_h, s.in_w, s.out_c, s.kh, s.kw, s.stride_h,
                    s.stride_w, s.dil_h, s.dil_w, s.pad_t, s.pad_l, s.pad_b, s.pad_r, int(s.act), worst);
        ++failed;
      } else {
        ++passed;
      }
    }
  }
  std::printf("%d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}
