// ONNX Runtime custom ops of the `edgeprune` domain, on the lite custom-op API.
//
// Op names are <Format>Conv<Activation>: Csr|Bsr|Nm x an activation suffix of src/activation.h
// (none, Relu, ...). Inputs:
//   Csr/Bsr: X, values, indices (int32), ptr (int32), bias
//   Nm:      X, values, nm_idx (uint8), bias
// Attributes: kernel_shape, strides, pads (t, l, b, r), dilations, weight_shape
// (out, in, kh, kw); Bsr adds block (r, c); Nm adds n, m. The exporter writes every one.
// A plan is built on the first run and again when the input shape changes; the work is
// split over ONNX Runtime's intra-op thread pool.
#define ORT_API_MANUAL_INIT
#include <onnxruntime_lite_custom_op.h>
#undef ORT_API_MANUAL_INIT

#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "activation.h"
#include "edgeprune/kernels.h"

namespace {

int g_isa = 0;

void ort_parallel_for(void* runner, ep_task_fn fn, void* ctx, size_t n) {
  Ort::KernelContext(static_cast<OrtKernelContext*>(runner)).ParallelFor(fn, n, 0, ctx);
}

struct PlanDeleter {
  void operator()(ep_plan* p) const { ep_plan_destroy(p); }
};

class ConvBase {
 public:
  ConvBase(const OrtKernelInfo* info, ep_format fmt, ep_act act) : act_(act) {
    Ort::ConstKernelInfo ki(info);
    const auto k = ki.GetAttributes<int64_t>("kernel_shape");
    const auto st = ki.GetAttributes<int64_t>("strides");
    const auto pd = ki.GetAttributes<int64_t>("pads");
    const auto dl = ki.GetAttributes<int64_t>("dilations");
    ws_ = ki.GetAttributes<int64_t>("weight_shape");
    if (k.size() != 2 || st.size() != 2 || pd.size() != 4 || dl.size() != 2 || ws_.size() != 4)
      throw std::runtime_error("edgeprune conv: 2-D kernel_shape/strides/dilations, 4 pads and weight_shape expected");
    shape_ = ep_conv_shape{};
    shape_.kh = int(k[0]);
    shape_.kw = int(k[1]);
    shape_.stride_h = int(st[0]);
    shape_.stride_w = int(st[1]);
    shape_.pad_t = int(pd[0]);
    shape_.pad_l = int(pd[1]);
    shape_.pad_b = int(pd[2]);
    shape_.pad_r = int(pd[3]);
    shape_.dil_h = int(dl[0]);
    shape_.dil_w = int(dl[1]);
    shape_.out_c = int(ws_[0]);
    shape_.act = act;
    weight_ = ep_sparse_weight{};
    weight_.fmt = fmt;
    if (fmt == EP_FMT_BSR) {
      const auto b = ki.GetAttributes<int64_t>("block");
      weight_.block_r = int(b.at(0));
      weight_.block_c = int(b.at(1));
    }
    if (fmt == EP_FMT_NM) {
      weight_.n = int(ki.GetAttribute<int64_t>("n"));
      weight_.m = int(ki.GetAttribute<int64_t>("m"));
    }
  }

 protected:
  void run(OrtKernelContext* ctx, const Ort::Custom::Tensor<float>& X, const Ort::Custom::Tensor<float>& values,
           const Ort::Custom::Tensor<float>& bias, Ort::Custom::Tensor<float>& Y, const void* a, int64_t na,
           const void* b, int64_t nb) {
    const auto xs = X.Shape();
    if (xs.size() != 4) throw std::runtime_error("edgeprune conv: input must be N x C x H x W");
    if (xs[1] != ws_[1]) throw std::runtime_error("edgeprune conv: input channels differ from weight_shape");
    if (bias.NumberOfElement() != ws_[0]) throw std::runtime_error("edgeprune conv: bias length differs from out_channels");
    std::shared_ptr<ep_plan> plan;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!plan_ || xs != planned_ || values.Data() != planned_values_) {
        ep_conv_shape s = shape_;
        s.batch = int(xs[0]);
        s.in_c = int(xs[1]);
        s.in_h = int(xs[2]);
        s.in_w = int(xs[3]);
        ep_sparse_weight w = weight_;
        w.values = values.Data();
        w.nnz = values.NumberOfElement() / (weight_.fmt == EP_FMT_BSR ? weight_.block_r * weight_.block_c : 1);
        fill(w, a, na, b, nb);
        ep_plan* p = ep_plan_create(&s, &w, bias.Data(), ep_isa(g_isa));
        if (!p) throw std::runtime_error(std::string("edgeprune conv: ") + ep_last_error());
        plan_.reset(p, PlanDeleter());
        planned_ = xs;
        planned_values_ = values.Data();
        out_shape_ = {xs[0], ws_[0], ep_conv_out_h(&s), ep_conv_out_w(&s)};
      }
      plan = plan_;
    }
    float* y = Y.Allocate(out_shape_);
    ep_plan_run(plan.get(), X.Data(), y, ort_parallel_for, ctx);
  }
  // Points the weight at the format's index arrays after checking their lengths.
  virtual void fill(ep_sparse_weight& w, const void* a, int64_t na, const void* b, int64_t nb) = 0;

  ep_act act_;
  std::vector<int64_t> ws_;
  ep_conv_shape shape_{};
  ep_sparse_weight weight_{};

 private:
  std::mutex mu_;
  std::shared_ptr<ep_plan> plan_;
  std::vector<int64_t> planned_, out_shape_;
  const float* planned_values_ = nullptr;
};

template <ep_format F, ep_act A>
struct CompressedConv : ConvBase {
  CompressedConv(const OrtApi*, const OrtKernelInfo* info) : ConvBase(info, F, A) {}
  void Compute(OrtKernelContext* ctx, const Ort::Custom::Tensor<float>& X, const Ort::Custom::Tensor<float>& values,
               const Ort::Custom::Tensor<int32_t>& indices, const Ort::Custom::Tensor<int32_t>& ptr,
               const Ort::Custom::Tensor<float>& bias, Ort::Custom::Tensor<float>& Y) {
    run(ctx, X, values, bias, Y, indices.Data(), indices.NumberOfElement(), ptr.Data(), ptr.NumberOfElement());
  }
  void fill(ep_sparse_weight& w, const void* a, int64_t na, const void* b, int64_t nb) override {
    const int rows = shape_.out_c / (F == EP_FMT_BSR ? w.block_r : 1);
    if (nb != rows + 1) throw std::runtime_error("edgeprune conv: ptr length differs from the rows");
    if (na != w.nnz) throw std::runtime_error("edgeprune conv: indices and values differ in length");
    w.indices = static_cast<const int32_t*>(a);
    w.ptr = static_cast<const int32_t*>(b);
  }
};

template <ep_act A>
struct NmConv : ConvBase {
  NmConv(const OrtApi*, const OrtKernelInfo* info) : ConvBase(info, EP_FMT_NM, A) {}
  void Compute(OrtKernelContext* ctx, const Ort::Custom::Tensor<float>& X, const Ort::Custom::Tensor<float>& values,
               const Ort::Custom::Tensor<uint8_t>& idx, const Ort::Custom::Tensor<float>& bias,
               Ort::Custom::Tensor<float>& Y) {
    run(ctx, X, values, bias, Y, idx.Data(), idx.NumberOfElement(), nullptr, 0);
  }
  void fill(ep_sparse_weight& w, const void* a, int64_t na, const void*, int64_t) override {
    if (na != w.nnz) throw std::runtime_error("edgeprune conv: nm_idx and values differ in length");
    w.nm_idx = static_cast<const uint8_t*>(a);
  }
};

std::vector<std::unique_ptr<Ort::Custom::OrtLiteCustomOp>>& ops() {
  static std::vector<std::unique_ptr<Ort::Custom::OrtLiteCustomOp>> all;
  return all;
}

template <ep_act A>
void add_activation(const char* suffix) {
  const std::string s(suffix);
  static std::vector<std::string> names;  // the op keeps a pointer to its name
  names.reserve(64);
  names.push_back("CsrConv" + s);
  ops().emplace_back(Ort::Custom::CreateLiteCustomOp<CompressedConv<EP_FMT_CSR, A>>(names.back().c_str(), "CPUExecutionProvider"));
  names.push_back("BsrConv" + s);
  ops().emplace_back(Ort::Custom::CreateLiteCustomOp<CompressedConv<EP_FMT_BSR, A>>(names.back().c_str(), "CPUExecutionProvider"));
  names.push_back("NmConv" + s);
  ops().emplace_back(Ort::Custom::CreateLiteCustomOp<NmConv<A>>(names.back().c_str(), "CPUExecutionProvider"));
}

}  // namespace

extern "C" {

// The library's instruction set and ABI, for the runtime's checks before registering.
EP_API int edgeprune_isa(void) { return ep_select_isa(); }
EP_API int edgeprune_abi_version(void) { return ep_abi_version(); }

EP_API OrtStatus* ORT_API_CALL RegisterCustomOps(OrtSessionOptions* options, const OrtApiBase* api_base) {
  const OrtApi* api = api_base->GetApi(ORT_API_VERSION);
  if (!api) {  // an onnxruntime older than the API these ops use: say so through the oldest API
    const OrtApi* oldest = api_base->GetApi(1);
    return oldest ? oldest->CreateStatus(ORT_FAIL, "edgeprune kernels need onnxruntime 1.21 or newer") : nullptr;
  }
  Ort::InitApi(api);
  const int isa = ep_select_isa();
  if (isa < 0) return api->CreateStatus(ORT_FAIL, ep_last_error());
  g_isa = isa;
  static Ort::CustomOpDomain domain{"edgeprune"};
  static std::once_flag once;
  try {
    std::call_once(once, [] {
#define EP_ADD_ACTIVATION(value, suffix, result) add_activation<value>(suffix);
      EP_ACTIVATIONS(EP_ADD_ACTIVATION)
#undef EP_ADD_ACTIVATION
      for (auto& op : ops()) domain.Add(op.get());
    });
    Ort::UnownedSessionOptions(options).Add(domain);
  } catch (const std::exception& e) {
    return api->CreateStatus(ORT_FAIL, e.what());
  }
  return nullptr;
}

}  // extern "C"
