// Stages that pass GPU tensors between each other through the host services, as the model plugins do.
#include <cstdio>
#include <string>

#include "tessera/plugin.hpp"

namespace {

namespace sdk = tessera::sdk;

// [n] f32: start, start + step, ...
class Ramp : public sdk::Stage {
 public:
  Ramp(const sdk::Params& p, const sdk::Host& host)
      : host_(host), n_(p.integer("n")), start_(p.number("start")), step_(p.number("step")) {}
  void run(sdk::Run& r) override {
    std::vector<float> v(static_cast<size_t>(n_));
    for (int64_t i = 0; i < n_; ++i) v[static_cast<size_t>(i)] = static_cast<float>(start_ + step_ * static_cast<double>(i));
    sdk::Tensor t(host_, TESSERA_DTYPE_F32, {n_}, "ramp");
    t.upload(v);
    r.set_tensor("values", t);  // the host keeps its own reference; ours goes with `t`
  }

 private:
  sdk::Host host_;
  int64_t n_;
  double start_, step_;
};

// y = alpha * x + beta, then the first `keep` elements (a view, no copy).
class Affine : public sdk::Stage {
 public:
  Affine(const sdk::Params& p, const sdk::Host& host)
      : host_(host), alpha_(p.number("alpha")), beta_(p.number("beta")), keep_(p.integer("keep")) {}
  void run(sdk::Run& r) override {
    sdk::Tensor x = r.tensor("values", host_);
    sdk::Tensor y(host_, TESSERA_DTYPE_F32, x.shape(), "affine");
    sdk::Stream s(host_);
    s.op("scale", {{"x", x}, {"out", y}, {"alpha", alpha_}, {"beta", beta_}});
    s.finish();
    const int64_t n = y.dim(0);
    r.set_tensor("values", keep_ > 0 && keep_ < n ? y.slice(0, 0, keep_) : y.retain());
  }

 private:
  sdk::Host host_;
  double alpha_, beta_;
  int64_t keep_;
};

class Print : public sdk::Stage {
 public:
  Print(const sdk::Params&, const sdk::Host& host) : host_(host) {}
  void run(sdk::Run& r) override {
    const std::vector<float> v = r.tensor("values", host_).download_f32();
    std::string text;
    for (float f : v) {
      char buf[32];
      std::snprintf(buf, sizeof buf, "%s%g", text.empty() ? "" : " ", static_cast<double>(f));
      text += buf;
      r.stream("text", buf);  // as a language model streams its tokens
    }
    r.set_texts("text", {text});
  }

 private:
  sdk::Host host_;
};

}  // namespace

TESSERA_PLUGIN("test.gpu", "1.0.0", "Tessera tests", "tensors on ports, ops through the host services",
               sdk::stage<Ramp>("ramp", "an f32 ramp on the GPU", {}, {sdk::output("values", TESSERA_PORT_TENSOR)},
                                {sdk::int_param("n", 8, 1, 1 << 20), sdk::float_param("start", 0, -1e6, 1e6),
                                 sdk::float_param("step", 1, -1e6, 1e6)}),
               sdk::stage<Affine>("affine", "alpha x + beta with the core 'scale' op",
                                  {sdk::input("values", TESSERA_PORT_TENSOR)}, {sdk::output("values", TESSERA_PORT_TENSOR)},
                                  {sdk::float_param("alpha", 1, -1e6, 1e6), sdk::float_param("beta", 0, -1e6, 1e6),
                                   sdk::int_param("keep", 0, 0, 1 << 20)}),
               sdk::stage<Print>("print", "the values as text", {sdk::input("values", TESSERA_PORT_TENSOR)},
                                 {sdk::output("text", TESSERA_PORT_TEXT)}))
