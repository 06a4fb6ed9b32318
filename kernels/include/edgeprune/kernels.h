/* edgeprune sparse convolution kernels: C ABI.
 *
 * A convolution weight W[out_c][in_c][kh][kw] is seen as a matrix of out_c rows and
 * K = in_c*kh*kw columns and stored in one of three sparse formats:
 *   CSR  values[nnz], indices[nnz] = column, ptr[out_c+1]
 *        columns in PyTorch order, k = (ci*kh + r)*kw + s
 *   BSR  blocks of block_r x block_c over the same matrix (out_c % block_r == 0,
 *        K % block_c == 0): values[nblocks][block_r][block_c], indices[nblocks] = block
 *        column, ptr[out_c/block_r + 1]
 *   N:M  N of every M consecutive input channels at each (out, r, s), the layout of
 *        sparse tensor cores: columns in channel-last order k' = (r*kw + s)*in_c + ci,
 *        values[out_c][K/M*N] and nm_idx[out_c][K/M*N] = position inside its group of M
 *
 * The convolution is computed directly from these arrays (no im2col buffer): bias and an
 * activation are fused into the store. A linear layer is a 1x1 convolution on a 1x1 image.
 * ep_conv_reference() is the portable definition every instruction-set path is tested
 * against; ep_plan_* run the fast path of the chosen instruction set.
 */
#ifndef EDGEPRUNE_KERNELS_H
#define EDGEPRUNE_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define EP_ABI_VERSION 1
#define EP_API __attribute__((visibility("default")))

/* Values are ABI; what each computes and its op-name suffix: one row each in src/activation.h. */
typedef enum { EP_ACT_NONE = 0, EP_ACT_RELU = 1, EP_ACT_RELU6 = 2, EP_ACT_SILU = 3 } ep_act;
/* Values are ABI; name, vector width, flags and CPU check: one row each in src/isa_table.inc. */
typedef enum { EP_ISA_REF = 0, EP_ISA_AVX2 = 1, EP_ISA_AVX512 = 2, EP_ISA_NEON = 3 } ep_isa;
typedef enum { EP_FMT_CSR = 0, EP_FMT_BSR = 1, EP_FMT_NM = 2 } ep_format;

typedef struct {
  int batch, in_c, in_h, in_w, out_c;
  int kh, kw;
  int stride_h, stride_w;
  int pad_t, pad_l, pad_b, pad_r;
  int dil_h, dil_w;
  ep_act act;
} ep_conv_shape;

typedef struct {
  ep_format fmt;
  const float* values;
  const int32_t* indices; /* CSR, BSR */
  const int32_t* ptr;     /* CSR, BSR */
  const uint8_t* nm_idx;  /* N:M */
  int64_t nnz;            /* CSR: values; BSR: blocks; N:M: values */
  int block_r, block_c;   /* BSR */
  int n, m;               /* N:M */
} ep_sparse_weight;

typedef void (*ep_task_fn)(void* ctx, size_t index);
/* Runs fn(ctx, i) for i in [0, n), in any order, possibly in parallel. */
typedef void (*ep_parallel_for)(void* runner, ep_task_fn fn, void* ctx, size_t n);

typedef struct ep_plan ep_plan;

EP_API int ep_abi_version(void);
EP_API const char* ep_last_error(void);
EP_API const char* ep_isa_name(ep_isa isa);
EP_API int ep_isa_available(ep_isa isa);
/* The best instruction set of this CPU, or the one forced by EDGEPRUNE_ISA (an ep_isa_name:
 * portable, avx2, ...); -1 with ep_last_error() set when the forced one is unknown or unavailable. */
EP_API int ep_select_isa(void);

EP_API int ep_conv_out_h(const ep_conv_shape* s);
EP_API int ep_conv_out_w(const ep_conv_shape* s);
/* Portable definition: y = act(conv(x, densify(w)) + bias). bias may be NULL. */
EP_API int ep_conv_reference(const ep_conv_shape* s, const ep_sparse_weight* w, const float* bias, const float* x,
                      float* y);

/* A plan copies the weight into the layout of the chosen path; NULL on error. */
EP_API ep_plan* ep_plan_create(const ep_conv_shape* s, const ep_sparse_weight* w, const float* bias, ep_isa isa);
EP_API void ep_plan_run(const ep_plan* p, const float* x, float* y, ep_parallel_for pf, void* runner);
EP_API void ep_plan_destroy(ep_plan* p);

#ifdef __cplusplus
}
#endif
#endif
