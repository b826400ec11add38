// MLPLOpt's per-parameter MLP as one XLA:CPU FFI kernel (learned_opt/cpu_kernel.py builds it).
//
// For every parameter i of every batch member b (features x: (F,) of column i of X[b]):
//
//   h_0 = relu(b_in + x W_in)            W_in (F, H)   (normaliser and step features folded in)
//   h_1 = relu(b_1 + h_0 W_1)            W_1  (H, H)
//   (d, m) = b_out + [h_1, x] W_out      W_out (H + F, 2)  (output layer and linear skip)
//   out_i = d * exp(m * exp_mult)
//
// XLA runs these as batched matrix products and element-wise passes over (members, n, H)
// activations that leave the L2 cache; here a tile of P = 64 parameters goes through all layers
// in L1 (P floats per unit: one 64-byte vector per 16 parameters), with a 4-unit x 4-vector
// register block for every product (16 FMA accumulators).
//
// Operands: W_in (..., F, H), b_in (..., H), W_1 (..., H, H), b_1 (..., H), W_out (..., H + F, 2),
// b_out (..., 2), then the F features x_f (..., n) as F separate operands (no stacked copy) ->
// out (..., n); the leading dims (a batch of members) equal for every operand. float32 throughout.

#include <cmath>
#include <cstdint>
#include <cstring>

#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace {

typedef float Vec __attribute__((vector_size(64)));  // 16 lanes: one per parameter of a tile
constexpr int kTile = 64;                            // parameters per tile
constexpr int kVecs = kTile / 16;
constexpr int kUnits = 4;                            // output units per register block

// out[k][p] = bias[k] + sum_j in[j][p] W[j][k] (then ReLU), for one tile; rows of kTile floats.
template <int J, int K, int KB, bool Relu>
inline void Dense(const float* __restrict in, const float* __restrict w,
                  const float* __restrict bias, float* __restrict out) {
  static_assert(K % KB == 0, "output units must be a multiple of the block");
  for (int k = 0; k < K; k += KB) {
    Vec acc[KB][kVecs];
#pragma GCC unroll 16
    for (int q = 0; q < KB; ++q)
#pragma GCC unroll 16
      for (int v = 0; v < kVecs; ++v) acc[q][v] = Vec{} + bias[k + q];
#pragma GCC unroll 4
    for (int j = 0; j < J; ++j) {
      Vec x[kVecs];
#pragma GCC unroll 16
      for (int v = 0; v < kVecs; ++v) x[v] = reinterpret_cast<const Vec*>(in + j * kTile)[v];
#pragma GCC unroll 16
      for (int q = 0; q < KB; ++q) {
        const float wq = w[j * K + k + q];
#pragma GCC unroll 16
        for (int v = 0; v < kVecs; ++v) acc[q][v] += x[v] * wq;
      }
    }
#pragma GCC unroll 16
    for (int q = 0; q < KB; ++q)
#pragma GCC unroll 16
      for (int v = 0; v < kVecs; ++v) {
        Vec a = acc[q][v];
        if (Relu) a = a < 0 ? 0 : a;  // max(a, 0) that keeps NaN (as XLA's max does)
        reinterpret_cast<Vec*>(out + (k + q) * kTile)[v] = a;
      }
  }
}

// exp(x) per lane: 2^k exp(r), k = round(x log2(e)), r = x - k ln(2) in [-ln(2)/2, ln(2)/2]
// (ln 2 split in two for exactness), exp(r) by its degree-7 Taylor polynomial (relative error
// below 2e-8 there, so the result is within about 2 float32 ulps); inf above 88.72, 0 below
// -87.33 (float32's normal range; XLA:CPU flushes the denormals below it too), NaN kept.
inline Vec Exp(Vec x) {
  const Vec big = Vec{} + 88.72283f, small = Vec{} - 87.33654f;
  Vec xc = x > big ? big : x;
  xc = xc < small ? small : xc;
  const Vec shifter = Vec{} + 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
  const Vec k = (xc * 1.44269504088896341f + shifter) - shifter;
  const Vec r = (xc - k * 0.693145751953125f) - k * 1.42860682030941723212e-6f;
  Vec p = Vec{} + 1.0f / 5040.0f;
  p = p * r + 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  typedef int IVec __attribute__((vector_size(64)));
  const IVec bits = (__builtin_convertvector(k, IVec) + 127) << 23;
  Vec result = p * (Vec)bits;  // 2^k: the exponent field of a float (a bit cast)
  result = x > big ? Vec{} + __builtin_inff() : result;
  result = x < small ? Vec{} : result;
  return x != x ? x : result;
}

template <int F, int H>
void Mlp(int64_t batch, int64_t n, const float* const* X, const float* w_in, const float* b_in,
         const float* w_1, const float* b_1, const float* w_out, const float* b_out,
         float exp_mult, float* out) {
  alignas(64) float h1_x[(H + F) * kTile];  // rows 0..H-1: h_1; rows H..H+F-1: the features
  alignas(64) float h0[H * kTile];
  alignas(64) float dm[2 * kTile];
  float* x = h1_x + H * kTile;
  for (int64_t b = 0; b < batch; ++b) {
    for (int64_t i0 = 0; i0 < n; i0 += kTile) {
      const int count = n - i0 < kTile ? static_cast<int>(n - i0) : kTile;
      for (int f = 0; f < F; ++f) {
        std::memcpy(x + f * kTile, X[f] + b * n + i0, count * sizeof(float));
        if (count < kTile) std::memset(x + f * kTile + count, 0, (kTile - count) * sizeof(float));
      }
      Dense<F, H, kUnits, true>(x, w_in + b * F * H, b_in + b * H, h0);
      Dense<H, H, kUnits, true>(h0, w_1 + b * H * H, b_1 + b * H, h1_x);
      Dense<H + F, 2, 2, false>(h1_x, w_out + b * (H + F) * 2, b_out + b * 2, dm);
      alignas(64) float step[kTile];
#pragma GCC unroll 16
      for (int v = 0; v < kVecs; ++v) {
        const Vec d = reinterpret_cast<const Vec*>(dm)[v];
        const Vec m = reinterpret_cast<const Vec*>(dm + kTile)[v];
        reinterpret_cast<Vec*>(step)[v] = d * Exp(m * exp_mult);
      }
      std::memcpy(out + b * n + i0, step, count * sizeof(float));
    }
  }
}

using MlpFn = void (*)(int64_t, int64_t, const float* const*, const float*, const float*,
                       const float*, const float*, const float*, const float*, float, float*);

// The (F, H) instantiations; cpu_kernel.py's SUPPORTED lists the same pairs.
MlpFn Select(int64_t f, int64_t h) {
#define LOPT_CASE(F_, H_) \
  if (f == F_ && h == H_) return &Mlp<F_, H_>;
  LOPT_CASE(12, 32) LOPT_CASE(14, 32) LOPT_CASE(16, 32) LOPT_CASE(18, 32)
  LOPT_CASE(14, 16) LOPT_CASE(16, 16) LOPT_CASE(14, 64) LOPT_CASE(16, 64)
#undef LOPT_CASE
  return nullptr;
}

bool Shape(const ffi::Buffer<ffi::F32>& a, int64_t batch, int64_t rows, int64_t cols) {
  auto d = a.dimensions();
  const size_t r = d.size();
  const size_t lead = cols < 0 ? 1 : 2;
  if (r < lead) return false;
  int64_t total = 1;
  for (size_t i = 0; i + lead < r; ++i) total *= d[i];
  if (total != batch) return false;
  return cols < 0 ? d[r - 1] == rows : (d[r - 2] == rows && d[r - 1] == cols);
}

ffi::Error MlpImpl(ffi::Buffer<ffi::F32> w_in, ffi::Buffer<ffi::F32> b_in,
                   ffi::Buffer<ffi::F32> w_1, ffi::Buffer<ffi::F32> b_1,
                   ffi::Buffer<ffi::F32> w_out, ffi::Buffer<ffi::F32> b_out,
                   ffi::RemainingArgs features, ffi::ResultBuffer<ffi::F32> out, float exp_mult) {
  constexpr int kMaxFeatures = 32;
  const int64_t f = static_cast<int64_t>(features.size());
  auto dw = w_in.dimensions(), dout = out->dimensions();
  if (f < 1 || f > kMaxFeatures || dw.size() < 2 || dout.size() < 1)
    return ffi::Error::InvalidArgument("lopt_mlp: expected W_in (..., F, H) and F features");
  const int64_t h = dw[dw.size() - 1], n = dout[dout.size() - 1];
  int64_t batch = 1;
  for (size_t i = 0; i + 1 < dout.size(); ++i) batch *= dout[i];
  if (dw[dw.size() - 2] != f || !Shape(w_in, batch, f, h) || !Shape(b_in, batch, h, -1) ||
      !Shape(w_1, batch, h, h) || !Shape(b_1, batch, h, -1) || !Shape(w_out, batch, h + f, 2) ||
      !Shape(b_out, batch, 2, -1))
    return ffi::Error::InvalidArgument("lopt_mlp: weight shapes do not match (..., F, H)");
  const float* xs[kMaxFeatures];
  for (int64_t i = 0; i < f; ++i) {
    auto x = features.get<ffi::Buffer<ffi::F32>>(i);
    if (!x.has_value() || !Shape(*x, batch, n, -1))
      return ffi::Error::InvalidArgument("lopt_mlp: every feature must be float32 (..., n)");
    xs[i] = x->typed_data();
  }
  MlpFn fn = Select(f, h);
  if (fn == nullptr)
    return ffi::Error::InvalidArgument("lopt_mlp: no kernel for this (features, hidden width)");
  fn(batch, n, xs, w_in.typed_data(), b_in.typed_data(), w_1.typed_data(), b_1.typed_data(),
     w_out.typed_data(), b_out.typed_data(), exp_mult, out->typed_data());
  return ffi::Error::Success();
}

}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(LoptMlp, MlpImpl,
                              ffi::Ffi::Bind()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .RemainingArgs()
                                  .Ret<ffi::Buffer<ffi::F32>>()
                                  .Attr<float>("exp_mult"));
