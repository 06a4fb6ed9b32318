// Internal: the layout a plan runs on, shared by every instruction-set path.
#pragma once

#include <cstdint>
#include <vector>

#include "edgeprune/kernels.h"
#include "isa.h"

namespace ep {

// The weight as blocks of R rows x C columns (CSR and N:M are R = C = 1). Each column of a
// block is an offset into the prepared input of one image, so the inner loop is a load at
// base + offset, a broadcast weight and a fused multiply-add.
struct Plan {
  ep_conv_shape s{};
  ep_isa isa = EP_ISA_REF;
  int oh = 0, ow = 0;
  // Where output row i of a channel starts (i * out_row_stride) and how many values the last
  // row holds. A 1x1, stride-1, unpadded convolution is pointwise: its H x W plane is run as
  // rows of a width that fills whole vectors (flat_hw = H*W), else flat_hw = 0.
  int64_t out_plane = 0;
  int out_row_stride = 0, last_row_width = 0;
  int64_t flat_hw = 0;
  bool direct = false;  // pointwise with H*W a whole number of rows: read the input in place
  int R = 1, C = 1, block_rows = 0;
  std::vector<int32_t> ptr;   // block_rows + 1
  std::vector<int32_t> offs;  // nblocks * C
  std::vector<float> vals;    // nblocks * C * R, column-major inside a block
  std::vector<float> bias;    // out_c
  // Prepared input: per image, stride_w x stride_h phase planes, each in_c x hp x wq, zero
  // padded: plane (pc, pr) holds padded input row hq*stride_h + pr, column q*stride_w + pc at
  // (hq, q). So the columns a vector of outputs reads are contiguous and its rows one wq apart
  // for any stride, and only the planes some kernel tap reads are written (one of four for a
  // 1x1 stride-2 convolution, which before read a quarter of a full copy of its input).
  int hp = 0, wq = 0;
  int64_t phase_stride = 0, image_stride = 0;
  std::vector<uint8_t> row_phase_used, col_phase_used;  // stride_h and stride_w entries
  // Tiling: vector width, vectors per row chunk, output rows per tile, rows per sub-block.
  int nv = 1, rt = 1, rs = 1;
  // Work split: bands of output rows x groups of block rows.
  int band = 1, group = 1;
};

// Sizes the prepared input and picks the tiling for vector width vw and a
// budget of acc accumulators.
void finish_plan(Plan& p, int vw, int acc);
void prepare_input(const Plan& p, const float* x, float* xp, ep_parallel_for pf, void* runner);
void set_error(const char* fmt, ...);

// One instruction-set path: computes all outputs of one image given its prepared input.
using RunFn = void (*)(const Plan& p, const float* xp, float* y, ep_parallel_for pf, void* runner);
// run<isa> is defined in src/conv_<name>.cpp of its isa_table.inc row, built with that row's flags.
template <ep_isa I>
void run(const Plan& p, const float* xp, float* y, ep_parallel_for pf, void* runner);
#define EP_ISA_ROW(id, ...) \
  template <>               \
  void run<id>(const Plan& p, const float* xp, float* y, ep_parallel_for pf, void* runner);
#include "isa_table.inc"
#undef EP_ISA_ROW

}  // namespace ep
