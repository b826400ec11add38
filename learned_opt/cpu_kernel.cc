// MLPLOpt's whole update of one tensor as one XLA:CPU FFI kernel (learned_opt/cpu_kernel.py builds
// it; learned_opt/mlp.py's docstring gives the rule). For the n elements of a tensor (one member):
//
//   pass 0 (Adafactor, rank >= 2; the tensor viewed as (L, R, C)):
//     row <- b_f row + (1 - b_f) mean_c(g^2 + 1e-30),  col <- b_f col + (1 - b_f) mean_r(g^2 + 1e-30)
//   pass 1: m_k <- b_k m_k + (1 - b_k) g,  v <- b_v v + (1 - b_v) g^2, the F features
//     x = [g, p, m_k, g rv, m_k rv, rv, (g rf, m_mid rf)]   rv = rsqrt(v + 1e-24),
//     rf = rsqrt(row / mean_r(row) * col + 1e-24) (rv for rank < 2),
//     and their sums of squares: inv_f = rsqrt(sum_i x_fi^2 / n + 1e-12)
//   pass 2: per parameter, the features (kept from pass 1 for tensors of up to 32,768
//     parameters, else computed again from the new moments) through the MLP with the
//     normaliser folded into the weights (W_in = inv_f W_0[f], W_skip = inv_f W_skip[f]):
//       h_0 = relu(b_in + x W_in),  h_1 = relu(b_1 + h_0 W_1),
//       (d, m) = b_out + h_1 W_2 + x W_skip,   update = -(d exp(m exp_mult)) s
//
// XLA runs this as ~60 small loops, reductions and batched matrix products per tensor and step;
// here a tile of P parameters goes through the features and every layer in L1 (P floats per
// unit), with a register block of FMA accumulators for every product: with AVX-512, P = 64 (one
// 64-byte vector per 16 parameters) and 4 units x 4 vectors; elsewhere P = 32 (32-byte vectors
// of 8) and 2 units x 4 vectors. A batch's members are independent: with share_threads, XLA's
// intra-op threads step some of them.
//
// Operands (leading dims: a batch of members, the same for every operand and result): g (.., n),
// p (.., n), m (.., n, K), v (.., n), row (.., L R or 1), col (.., L C or 1), s (..), W_in (.., F, H),
// b_in (.., H), W_1 (.., H, H), b_1 (.., H), W_2 (.., H, 2), W_skip (.., F, 2), b_out (.., 2).
// Results: update (.., n), m, v, row, col. float32 throughout.

#include <atomic>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <vector>

#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace {

// One lane per parameter of a tile. The vectors are the target's own: 64 bytes with AVX-512, else
// 32 (GCC expands a vector wider than the target's piecewise, through memory: 8x slower than
// XLA on an AVX2 machine), with a tile and register block sized to its registers.
#if defined(__AVX512F__)
constexpr int kLanes = 16;
constexpr int kTile = 64;   // parameters per tile
constexpr int kUnits = 4;   // output units per register block: 4 x 4 accumulators of 32
#else
constexpr int kLanes = 8;
constexpr int kTile = 32;
constexpr int kUnits = 2;   // 2 x 4 accumulators of 16 registers (AVX2; tiles of 32 with 4
                            // units, or of 64 with 2, ran 0.6-0.7x as fast)
#endif
typedef float Vec __attribute__((vector_size(4 * kLanes)));
typedef int IVec __attribute__((vector_size(4 * kLanes)));
constexpr int kVecs = kTile / kLanes;

// out[k][p] = bias[k] + sum_j in[j][p] W[j][k] (then ReLU), for one tile; rows of kTile floats.
// Add: out[k][p] += sum_j in[j][p] W[j][k] instead (bias unused).
template <int J, int K, int KB, bool Relu, bool Add = false>
inline void Dense(const float* __restrict in, const float* __restrict w,
                  const float* __restrict bias, float* __restrict out) {
  static_assert(K % KB == 0, "output units must be a multiple of the block");
  for (int k = 0; k < K; k += KB) {
    Vec acc[KB][kVecs];
#pragma GCC unroll 16
    for (int q = 0; q < KB; ++q)
#pragma GCC unroll 16
      for (int v = 0; v < kVecs; ++v)
        acc[q][v] = Add ? reinterpret_cast<const Vec*>(out + (k + q) * kTile)[v] : Vec{} + bias[k + q];
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
  const IVec bits = (__builtin_convertvector(k, IVec) + 127) << 23;
  Vec result = p * (Vec)bits;  // 2^k: the exponent field of a float (a bit cast)
  result = x > big ? Vec{} + __builtin_inff() : result;
  result = x < small ? Vec{} : result;
  return x != x ? x : result;
}

// The moment and feature constants (attributes of the call).
struct Rule {
  const float* decays;       // b_k (K)
  const float* complements;  // 1 - b_k (K), as XLA's float32 arithmetic gives them
  float rms_decay, rms_complement, ada_decay, ada_complement, exp_mult;
  int64_t mid;         // the momentum that the Adafactor feature uses
  int64_t rows, cols;  // R, C of the (L, R, C) view; 0: no factored second moment
};

// One member's operands and results.
struct Leaf {
  const float *g, *p, *m, *v, *row, *col, *s;
  const float *w_in, *b_in, *w_1, *b_1, *w_2, *w_skip, *b_out;
  float *out, *m_out, *v_out, *row_out, *col_out;
};

inline float Rsqrt(float x) { return 1.0f / std::sqrt(x); }

// F, the number of per-parameter features for K momenta (and Adafactor's two).
template <int K, bool A>
constexpr int kFeatures = 2 * K + 4 + (A ? 2 : 0);

// Pass 0: the new Adafactor row / column factors, and row / mean_r(row) into `scaled` (L R).
void Factors(const Rule& rule, int64_t n, const Leaf& a, float* scaled) {
  const int64_t r_n = rule.rows, c_n = rule.cols, l_n = n / (r_n * c_n);
  for (int64_t l = 0; l < l_n; ++l) {
    float* col_sum = a.col_out + l * c_n;
    for (int64_t c = 0; c < c_n; ++c) col_sum[c] = 0.0f;
    for (int64_t r = 0; r < r_n; ++r) {
      const float* g = a.g + (l * r_n + r) * c_n;
      float row_sum = 0.0f;
      for (int64_t c = 0; c < c_n; ++c) {
        const float q = g[c] * g[c] + 1e-30f;
        row_sum += q;
        col_sum[c] += q;
      }
      const int64_t i = l * r_n + r;
      a.row_out[i] = rule.ada_decay * a.row[i] + rule.ada_complement * (row_sum / c_n);
    }
    for (int64_t c = 0; c < c_n; ++c)
      col_sum[c] = rule.ada_decay * a.col[l * c_n + c] + rule.ada_complement * (col_sum[c] / r_n);
    float mean = 0.0f;
    for (int64_t r = 0; r < r_n; ++r) mean += a.row_out[l * r_n + r];
    mean /= r_n;
    for (int64_t r = 0; r < r_n; ++r) scaled[l * r_n + r] = a.row_out[l * r_n + r] / mean;
  }
}

// The F features of parameters i0 .. i0 + count - 1, as rows of kTile floats of x (zeros past
// count). Update: first the new moments from the old (written to m_out, v_out); else read them
// from there. Loops over the whole tile, so that they vectorise.
template <int K, bool A, bool Update>
inline void Features(const Rule& rule, const Leaf& a, const float* scaled, int64_t i0, int count,
                     float* x) {
  constexpr int F = kFeatures<K, A>;
  alignas(64) float v[kTile], rv[kTile], rf[kTile];
  float *g = x, *m = x + 2 * kTile;
  std::memcpy(g, a.g + i0, count * sizeof(float));
  std::memcpy(x + kTile, a.p + i0, count * sizeof(float));
  if (Update) {
    for (int q = 0; q < count; ++q) {
      v[q] = rule.rms_decay * a.v[i0 + q] + rule.rms_complement * (g[q] * g[q]);
      a.v_out[i0 + q] = v[q];
#pragma GCC unroll 8
      for (int k = 0; k < K; ++k) {
        const int64_t j = (i0 + q) * K + k;
        const float mk = rule.decays[k] * a.m[j] + rule.complements[k] * g[q];
        a.m_out[j] = mk;
        m[k * kTile + q] = mk;
      }
    }
  } else {
    std::memcpy(v, a.v_out + i0, count * sizeof(float));
    for (int q = 0; q < count; ++q)
#pragma GCC unroll 8
      for (int k = 0; k < K; ++k) m[k * kTile + q] = a.m_out[(i0 + q) * K + k];
  }
  for (int q = count; q < kTile; ++q) v[q] = 1.0f;
  for (int q = 0; q < kTile; ++q) rv[q] = Rsqrt(v[q] + 1e-24f);
  for (int q = 0; q < kTile; ++q) x[(2 + K) * kTile + q] = g[q] * rv[q];
  for (int k = 0; k < K; ++k)
    for (int q = 0; q < kTile; ++q) x[(3 + K + k) * kTile + q] = m[k * kTile + q] * rv[q];
  std::memcpy(x + (3 + 2 * K) * kTile, rv, sizeof(rv));
  if (A) {
    if (rule.rows > 0) {  // rf = rsqrt(row / mean(row) * col + eps), walking rows and columns
      int64_t row = i0 / rule.cols, c = i0 - row * rule.cols;
      int64_t l = row / rule.rows, r = row - l * rule.rows;
      for (int q = 0; q < count; ++q) {
        rf[q] = scaled[row] * a.col_out[l * rule.cols + c];
        if (++c < rule.cols) continue;
        c = 0, ++row;
        if (++r == rule.rows) r = 0, ++l;
      }
      for (int q = count; q < kTile; ++q) rf[q] = 1.0f;
      for (int q = 0; q < kTile; ++q) rf[q] = Rsqrt(rf[q] + 1e-24f);
    } else {
      std::memcpy(rf, rv, sizeof(rv));
    }
    const float* m_mid = m + rule.mid * kTile;
    for (int q = 0; q < kTile; ++q) {
      x[(4 + 2 * K) * kTile + q] = g[q] * rf[q];
      x[(5 + 2 * K) * kTile + q] = m_mid[q] * rf[q];
    }
  }
  if (count < kTile)
    for (int f = 0; f < F; ++f) std::memset(x + f * kTile + count, 0, (kTile - count) * sizeof(float));
}

// Tensors of at most this many parameters keep their features from pass 1 for pass 2 (F floats
// per parameter, in L2); larger ones compute them again.
constexpr int64_t kKeepFeatures = 1 << 15;

// A per-thread scratch buffer of at least `floats` floats, aligned as Vec (kept between calls).
float* Scratch(int slot, size_t floats) {
  thread_local std::vector<Vec> buffers[2];  // C++17: aligned as Vec
  if (buffers[slot].size() * kLanes < floats) buffers[slot].resize((floats + kLanes - 1) / kLanes);
  return reinterpret_cast<float*>(buffers[slot].data());
}

template <int K, bool A, int H>
void Step(const Rule& rule, int64_t n, const Leaf& a) {
  constexpr int F = kFeatures<K, A>;
  alignas(64) float local[F * kTile];
  alignas(64) float h0[H * kTile];
  alignas(64) float h1[H * kTile];
  alignas(64) float dm[2 * kTile];
  alignas(64) float step[kTile];
  const int64_t tiles = (n + kTile - 1) / kTile;
  float* kept = n <= kKeepFeatures ? Scratch(0, tiles * F * kTile) : nullptr;
  float* scaled = Scratch(1, rule.rows > 0 ? n / rule.cols : 1);
  if (A && rule.rows > 0) Factors(rule, n, a, scaled);
  // pass 1: the moments and the features, and the features' sums of squares (kLanes each)
  Vec squares[F];
  for (int f = 0; f < F; ++f) squares[f] = Vec{};
  for (int64_t t = 0; t < tiles; ++t) {
    const int64_t i0 = t * kTile;
    const int count = n - i0 < kTile ? static_cast<int>(n - i0) : kTile;
    float* x = kept ? kept + t * F * kTile : local;
    Features<K, A, true>(rule, a, scaled, i0, count, x);
    for (int f = 0; f < F; ++f)
#pragma GCC unroll 16
      for (int v = 0; v < kVecs; ++v) {
        const Vec xv = reinterpret_cast<const Vec*>(x + f * kTile)[v];
        squares[f] += xv * xv;
      }
  }
  // the normaliser, folded into the first layer's and the skip's weights
  alignas(64) float w_in[F * H];
  alignas(64) float w_skip[F * 2];
  const float mean_n = static_cast<float>(n > 0 ? n : 1);
  for (int f = 0; f < F; ++f) {
    float total = 0.0f;
    for (int lane = 0; lane < kLanes; ++lane) total += squares[f][lane];
    const float inv = Rsqrt(total / mean_n + 1e-12f);
    for (int h = 0; h < H; ++h) w_in[f * H + h] = a.w_in[f * H + h] * inv;
    w_skip[f * 2] = a.w_skip[f * 2] * inv;
    w_skip[f * 2 + 1] = a.w_skip[f * 2 + 1] * inv;
  }
  // pass 2: the MLP, a tile at a time
  const float s = *a.s;
  for (int64_t t = 0; t < tiles; ++t) {
    const int64_t i0 = t * kTile;
    const int count = n - i0 < kTile ? static_cast<int>(n - i0) : kTile;
    float* x = kept ? kept + t * F * kTile : local;
    if (!kept) Features<K, A, false>(rule, a, scaled, i0, count, x);
    Dense<F, H, kUnits, true>(x, w_in, a.b_in, h0);
    Dense<H, H, kUnits, true>(h0, a.w_1, a.b_1, h1);
    Dense<H, 2, 2, false>(h1, a.w_2, a.b_out, dm);
    Dense<F, 2, 2, false, true>(x, w_skip, nullptr, dm);
#pragma GCC unroll 16
    for (int v = 0; v < kVecs; ++v) {
      const Vec d = reinterpret_cast<const Vec*>(dm)[v];
      const Vec m = reinterpret_cast<const Vec*>(dm + kTile)[v];
      reinterpret_cast<Vec*>(step)[v] = -((d * Exp(m * rule.exp_mult)) * s);
    }
    std::memcpy(a.out + i0, step, count * sizeof(float));
  }
}

using StepFn = void (*)(const Rule&, int64_t, const Leaf&);

// The (K, Adafactor, H) instantiations; cpu_kernel.py's SUPPORTED lists the same.
StepFn Select(int64_t k, bool adafactor, int64_t h) {
#define LOPT_CASE(K_, A_, H_) \
  if (k == K_ && adafactor == A_ && h == H_) return &Step<K_, A_, H_>;
  LOPT_CASE(4, true, 32) LOPT_CASE(5, true, 32) LOPT_CASE(6, true, 32)
  LOPT_CASE(4, false, 32) LOPT_CASE(5, false, 32) LOPT_CASE(6, false, 32)
  LOPT_CASE(5, true, 16) LOPT_CASE(5, true, 64) LOPT_CASE(5, false, 16) LOPT_CASE(5, false, 64)
#undef LOPT_CASE
  return nullptr;
}

// One call's members, shared by the threads that step them. A thread claims a member from
// `next` and steps it; the caller waits until every member is done, which only waits for members
// that running threads have claimed (a helper that starts late finds none and returns at once,
// touching only this object, which it keeps alive).
struct Members {
  StepFn fn;
  Rule rule;
  int64_t n;
  std::vector<Leaf> leaves;
  std::atomic<int64_t> next{0}, done{0};
  std::mutex mutex;
  std::condition_variable all_done;

  void Run() {
    const int64_t total = static_cast<int64_t>(leaves.size());
    for (int64_t b; (b = next.fetch_add(1)) < total;) {
      fn(rule, n, leaves[b]);
      if (done.fetch_add(1) + 1 == total) {
        std::lock_guard<std::mutex> lock(mutex);
        all_done.notify_all();
      }
    }
  }

  void Wait() {
    const int64_t total = static_cast<int64_t>(leaves.size());
    std::unique_lock<std::mutex> lock(mutex);
    all_done.wait(lock, [&] { return done.load() == total; });
  }
};

ffi::Error StepImpl(ffi::Buffer<ffi::F32> g, ffi::Buffer<ffi::F32> p, ffi::Buffer<ffi::F32> m,
                    ffi::Buffer<ffi::F32> v, ffi::Buffer<ffi::F32> row, ffi::Buffer<ffi::F32> col,
                    ffi::Buffer<ffi::F32> s, ffi::Buffer<ffi::F32> w_in, ffi::Buffer<ffi::F32> b_in,
                    ffi::Buffer<ffi::F32> w_1, ffi::Buffer<ffi::F32> b_1, ffi::Buffer<ffi::F32> w_2,
                    ffi::Buffer<ffi::F32> w_skip, ffi::Buffer<ffi::F32> b_out,
                    ffi::ResultBuffer<ffi::F32> out, ffi::ResultBuffer<ffi::F32> m_out,
                    ffi::ResultBuffer<ffi::F32> v_out, ffi::ResultBuffer<ffi::F32> row_out,
                    ffi::ResultBuffer<ffi::F32> col_out, ffi::Span<const float> decays,
                    ffi::Span<const float> complements, float rms_decay, float rms_complement,
                    float ada_decay, float ada_complement, float exp_mult, int64_t mid,
                    int64_t adafactor, int64_t rows, int64_t cols, int64_t share_threads,
                    ffi::ThreadPool pool) {
  const int64_t k = static_cast<int64_t>(decays.size());
  auto dg = g.dimensions(), dw = w_in.dimensions();
  if (dg.size() < 1 || dw.size() < 2 || k < 1 || complements.size() != decays.size())
    return ffi::Error::InvalidArgument("lopt_step: expected g (..., n), W_in (..., F, H), K decays");
  const int64_t n = dg[dg.size() - 1], h = dw[dw.size() - 1];
  const int64_t f = 2 * k + 4 + (adafactor ? 2 : 0);
  const int64_t batch = n > 0 ? g.element_count() / n : 0;
  const int64_t factored = rows > 0 && cols > 0 && n % (rows * cols) == 0;
  const int64_t lr = factored ? n / cols : 1, lc = factored ? n / rows : 1;
  // every operand's and result's size per member, in call order
  const int64_t sizes[] = {n, n, n * k, n, lr, lc, 1, f * h, h, h * h, h, h * 2, f * 2, 2,
                           n, n * k, n, lr, lc};
  const size_t counts[] = {g.element_count(),      p.element_count(),      m.element_count(),
                           v.element_count(),      row.element_count(),    col.element_count(),
                           s.element_count(),      w_in.element_count(),   b_in.element_count(),
                           w_1.element_count(),    b_1.element_count(),    w_2.element_count(),
                           w_skip.element_count(), b_out.element_count(),  out->element_count(),
                           m_out->element_count(), v_out->element_count(), row_out->element_count(),
                           col_out->element_count()};
  if (batch < 1 || dw[dw.size() - 2] != f || (rows > 0 && !factored) || mid < 0 || mid >= k)
    return ffi::Error::InvalidArgument("lopt_step: shapes do not match (n, K, F, H, rows, cols)");
  for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); ++i)
    if (counts[i] != static_cast<size_t>(batch * sizes[i]))
      return ffi::Error::InvalidArgument("lopt_step: an operand's size does not match the batch");
  StepFn fn = Select(k, adafactor != 0, h);
  if (fn == nullptr)
    return ffi::Error::InvalidArgument("lopt_step: no kernel for this (K, Adafactor, hidden)");
  const Rule rule{decays.begin(), complements.begin(), rms_decay, rms_complement, ada_decay,
                  ada_complement, exp_mult, mid, factored ? rows : 0, factored ? cols : 0};
  auto work = std::make_shared<Members>();
  work->fn = fn;
  work->rule = rule;
  work->n = n;
  work->leaves.reserve(batch);
  for (int64_t b = 0; b < batch; ++b) {
    work->leaves.push_back(Leaf{
        g.typed_data() + b * n,          p.typed_data() + b * n,
        m.typed_data() + b * n * k,      v.typed_data() + b * n,
        row.typed_data() + b * lr,       col.typed_data() + b * lc,
        s.typed_data() + b,              w_in.typed_data() + b * f * h,
        b_in.typed_data() + b * h,       w_1.typed_data() + b * h * h,
        b_1.typed_data() + b * h,        w_2.typed_data() + b * h * 2,
        w_skip.typed_data() + b * f * 2, b_out.typed_data() + b * 2,
        out->typed_data() + b * n,       m_out->typed_data() + b * n * k,
        v_out->typed_data() + b * n,     row_out->typed_data() + b * lr,
        col_out->typed_data() + b * lc});
    if (!factored) {  // unused factors pass through
      work->leaves.back().row_out[0] = work->leaves.back().row[0];
      work->leaves.back().col_out[0] = work->leaves.back().col[0];
    }
  }
  // Members are independent: XLA's intra-op threads (unless other devices of the process keep
  // them busy: share_threads = 0) and this one take them from a counter.
  const int64_t helpers = share_threads ? std::min<int64_t>(pool.num_threads(), batch - 1) : 0;
  for (int64_t t = 0; t < helpers; ++t) pool.Schedule([work] { work->Run(); });
  work->Run();
  work->Wait();
  return ffi::Error::Success();
}

}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(LoptStep, StepImpl,
                              ffi::Ffi::Bind()
                                  .Arg<ffi::Buffer<ffi::F32>>()  // g
                                  .Arg<ffi::Buffer<ffi::F32>>()  // p
                                  .Arg<ffi::Buffer<ffi::F32>>()  // m
                                  .Arg<ffi::Buffer<ffi::F32>>()  // v
                                  .Arg<ffi::Buffer<ffi::F32>>()  // row
                                  .Arg<ffi::Buffer<ffi::F32>>()  // col
                                  .Arg<ffi::Buffer<ffi::F32>>()  // s
                                  .Arg<ffi::Buffer<ffi::F32>>()  // W_in
                                  .Arg<ffi::Buffer<ffi::F32>>()  // b_in
                                  .Arg<ffi::Buffer<ffi::F32>>()  // W_1
                                  .Arg<ffi::Buffer<ffi::F32>>()  // b_1
                                  .Arg<ffi::Buffer<ffi::F32>>()  // W_2
                                  .Arg<ffi::Buffer<ffi::F32>>()  // W_skip
                                  .Arg<ffi::Buffer<ffi::F32>>()  // b_out
                                  .Ret<ffi::Buffer<ffi::F32>>()  // update
                                  .Ret<ffi::Buffer<ffi::F32>>()  // m
                                  .Ret<ffi::Buffer<ffi::F32>>()  // v
                                  .Ret<ffi::Buffer<ffi::F32>>()  // row
                                  .Ret<ffi::Buffer<ffi::F32>>()  // col
                                  .Attr<ffi::Span<const float>>("decays")
                                  .Attr<ffi::Span<const float>>("complements")
                                  .Attr<float>("rms_decay")
                                  .Attr<float>("rms_complement")
                                  .Attr<float>("ada_decay")
                                  .Attr<float>("ada_complement")
                                  .Attr<float>("exp_mult")
                                  .Attr<int64_t>("mid")
                                  .Attr<int64_t>("adafactor")
                                  .Attr<int64_t>("rows")
                                  .Attr<int64_t>("cols")
                                  .Attr<int64_t>("share_threads")
                                  .Ctx<ffi::ThreadPool>());
