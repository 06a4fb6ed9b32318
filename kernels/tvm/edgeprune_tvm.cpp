// edgeprune's sparse convolution as a TVM function: what a Relax module reaches with
// `R.call_dps_packed("edgeprune_sparse_conv2d", [X, spec, values, indices, ptr, nm_idx, bias], out)`.
//
// This file is linked into the module library itself (export_library), so the module carries
// its kernels: the VM finds the function among the library's exported symbols, and a board
// needs nothing but the TVM runtime. Arguments (destination-passing style: Y is the output):
//   X       float32 N x C x H x W
//   spec    int64 [fmt, out_c, kh, kw, stride_h, stride_w, pad_t, pad_l, pad_b, pad_r,
//                  dil_h, dil_w, act, block_r, block_c, n, m]  (fmt, act: ep_format, ep_act)
//   values  float32; indices, ptr int32 (CSR, BSR; empty for N:M); nm_idx uint8 (N:M; empty
//           otherwise); bias float32 [out_c]: the layouts of include/edgeprune/kernels.h
//   Y       float32 N x out_c x OH x OW
// A plan (the weight in the chosen path's layout) is built on the first call for an input
// shape and kept for the life of the loaded library: the arrays are the module's constants.
// The work is split over the TVM runtime's thread pool (TVMBackendParallelLaunch).
// edgeprune_abi_version and edgeprune_isa_name let the runner check the kernels it loaded.
#include <tvm/ffi/container/tensor.h>
#include <tvm/ffi/error.h>
#include <tvm/ffi/function.h>
#include <tvm/runtime/c_backend_api.h>

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>

#include "edgeprune/kernels.h"

namespace {

constexpr int kSpecLength = 17;

struct PlanDeleter {
  void operator()(ep_plan* p) const { ep_plan_destroy(p); }
};

struct Planned {
  std::unique_ptr<ep_plan, PlanDeleter> plan;
  int out_c, out_h, out_w;
};

// (spec, values, indices, ptr, nm_idx, bias, the arrays' lengths, N, C, H, W): the constants'
// addresses and sizes and the input shape (the spec's address names the layer's description).
using Key = std::tuple<const void*, const void*, const void*, const void*, const void*, const void*, int64_t, int64_t,
                       int64_t, int64_t, int64_t, int64_t, int64_t>;

std::mutex g_mu;
std::map<Key, std::shared_ptr<Planned>> g_plans;

[[noreturn]] void fail(const std::string& what) { TVM_FFI_THROW(ValueError) << "edgeprune_sparse_conv2d: " << what; }

void check(const tvm::ffi::TensorView& t, const char* name, DLDataTypeCode code, int bits, int ndim) {
  if (t.device().device_type != kDLCPU) fail(std::string(name) + " is not on the CPU");
  if (t.dtype().code != code || t.dtype().bits != bits || t.dtype().lanes != 1) fail(std::string(name) + " has the wrong type");
  if (ndim >= 0 && t.ndim() != ndim) fail(std::string(name) + " has the wrong number of dimensions");
  if (!t.IsContiguous()) fail(std::string(name) + " is not contiguous");
}

int64_t count(const tvm::ffi::TensorView& t) {
  int64_t n = 1;
  for (int i = 0; i < t.ndim(); ++i) n *= t.size(i);
  return n;
}

struct Launch {
  ep_task_fn fn;
  void* ctx;
  size_t n;
};

int run_tasks(int task, TVMParallelGroupEnv* env, void* cdata) {
  const auto* l = static_cast<const Launch*>(cdata);
  for (size_t i = size_t(task); i < l->n; i += size_t(env->num_task)) l->fn(l->ctx, i);
  return 0;
}

void tvm_parallel_for(void*, ep_task_fn fn, void* ctx, size_t n) {
  if (n == 0) return;
  if (n == 1) return fn(ctx, 0);
  Launch l{fn, ctx, n};
  if (TVMBackendParallelLaunch(run_tasks, &l, 0) != 0) fail("the TVM thread pool failed");
}

std::shared_ptr<Planned> plan_for(const tvm::ffi::TensorView& X, const int64_t* spec, const tvm::ffi::TensorView& values,
                                  const tvm::ffi::TensorView& indices, const tvm::ffi::TensorView& ptr,
                                  const tvm::ffi::TensorView& nm_idx, const tvm::ffi::TensorView& bias) {
  const Key key{spec, values.data_ptr(), indices.data_ptr(), ptr.data_ptr(), nm_idx.data_ptr(), bias.data_ptr(),
                count(values), count(indices), count(ptr), X.size(0), X.size(1), X.size(2), X.size(3)};
  std::lock_guard<std::mutex> lock(g_mu);
  auto found = g_plans.find(key);
  if (found != g_plans.end()) return found->second;
  ep_conv_shape s{};
  s.batch = int(X.size(0));
  s.in_c = int(X.size(1));
  s.in_h = int(X.size(2));
  s.in_w = int(X.size(3));
  s.out_c = int(spec[1]);
  s.kh = int(spec[2]);
  s.kw = int(spec[3]);
  s.stride_h = int(spec[4]);
  s.stride_w = int(spec[5]);
  s.pad_t = int(spec[6]);
  s.pad_l = int(spec[7]);
  s.pad_b = int(spec[8]);
  s.pad_r = int(spec[9]);
  s.dil_h = int(spec[10]);
  s.dil_w = int(spec[11]);
  if (spec[12] < EP_ACT_NONE || spec[12] > EP_ACT_SILU) fail("unknown activation");
  s.act = ep_act(spec[12]);
  ep_sparse_weight w{};
  if (spec[0] < EP_FMT_CSR || spec[0] > EP_FMT_NM) fail("unknown format");
  w.fmt = ep_format(spec[0]);
  w.values = static_cast<const float*>(values.data_ptr());
  w.block_r = int(spec[13]);
  w.block_c = int(spec[14]);
  w.n = int(spec[15]);
  w.m = int(spec[16]);
  const int64_t nvalues = count(values);
  if (w.fmt == EP_FMT_NM) {
    if (count(nm_idx) != nvalues) fail("nm_idx and values differ in length");
    w.nm_idx = static_cast<const uint8_t*>(nm_idx.data_ptr());
    w.nnz = nvalues;
  } else {
    const int block = w.fmt == EP_FMT_BSR ? w.block_r * w.block_c : 1;
    if (block < 1 || nvalues % block != 0) fail("values do not hold whole blocks");
    w.nnz = nvalues / block;
    const int rows = w.fmt == EP_FMT_BSR ? s.out_c / w.block_r : s.out_c;
    if (count(ptr) != int64_t(rows) + 1) fail("ptr length differs from the rows");
    if (count(indices) != w.nnz) fail("indices and values differ in length");
    w.indices = static_cast<const int32_t*>(indices.data_ptr());
    w.ptr = static_cast<const int32_t*>(ptr.data_ptr());
  }
  if (count(bias) != s.out_c) fail("bias length differs from out_channels");
  const int isa = ep_select_isa();
  if (isa < 0) fail(ep_last_error());
  ep_plan* p = ep_plan_create(&s, &w, static_cast<const float*>(bias.data_ptr()), ep_isa(isa));
  if (!p) fail(ep_last_error());  // validates the shape and the index arrays
  auto planned = std::make_shared<Planned>(Planned{std::unique_ptr<ep_plan, PlanDeleter>(p), s.out_c,
                                                   ep_conv_out_h(&s), ep_conv_out_w(&s)});
  g_plans.emplace(key, planned);
  return planned;
}

void sparse_conv2d(tvm::ffi::TensorView X, tvm::ffi::TensorView spec, tvm::ffi::TensorView values,
                   tvm::ffi::TensorView indices, tvm::ffi::TensorView ptr, tvm::ffi::TensorView nm_idx,
                   tvm::ffi::TensorView bias, tvm::ffi::TensorView Y) {
  check(X, "X", kDLFloat, 32, 4);
  check(spec, "spec", kDLInt, 64, 1);
  check(values, "values", kDLFloat, 32, -1);
  check(indices, "indices", kDLInt, 32, -1);
  check(ptr, "ptr", kDLInt, 32, -1);
  check(nm_idx, "nm_idx", kDLUInt, 8, -1);
  check(bias, "bias", kDLFloat, 32, -1);
  check(Y, "Y", kDLFloat, 32, 4);
  if (spec.size(0) != kSpecLength) fail("spec must hold " + std::to_string(kSpecLength) + " numbers");
  const auto planned = plan_for(X, static_cast<const int64_t*>(spec.data_ptr()), values, indices, ptr, nm_idx, bias);
  if (Y.size(0) != X.size(0) || Y.size(1) != planned->out_c || Y.size(2) != planned->out_h ||
      Y.size(3) != planned->out_w)
    fail("the output shape differs from the convolution's");
  ep_plan_run(planned->plan.get(), static_cast<const float*>(X.data_ptr()), static_cast<float*>(Y.data_ptr()),
              tvm_parallel_for, nullptr);
}

int abi_version() { return ep_abi_version(); }

// The instruction set the kernels run on here ("none" when this CPU has none they were built with).
std::string isa_name() {
  const int isa = ep_select_isa();
  return isa < 0 ? std::string("none") : std::string(ep_isa_name(ep_isa(isa)));
}

}  // namespace

TVM_FFI_DLL_EXPORT_TYPED_FUNC(edgeprune_sparse_conv2d, sparse_conv2d);
TVM_FFI_DLL_EXPORT_TYPED_FUNC(edgeprune_abi_version, abi_version);
TVM_FFI_DLL_EXPORT_TYPED_FUNC(edgeprune_isa_name, isa_name);
