// Where the time of a small half-precision exact search on the GPU goes (CUDA builds).
//   bench_small_search [--dtype fp16|bf16] [--k K] [--reps R] [--shape N,DIM,QUERIES]...
// For each shape (default: the cache step 16384,256,128 and variations of one size at a time)
// it times, with CUDA events around R back-to-back launches (GPU time per search, the host
// issuing ahead), each stage of both paths of torch:flat:
//   - the two-launch path: small_candidates (index/cuda/small_search.h), select_finish with
//     the float32 rescoring, and both;
//   - the matmul path: normalize_rows, the fp16/bf16 matmul (by cuBLAS straight, as torch:flat
//     runs it: index/cuda/reduced_gemm.h; and through at::mm_out), select_topk with the
//     rescoring, and all three (with either matmul);
// and the latency of each whole path (issue, then wait for the device, each search on its own;
// median of R) with the host's time to issue it (the median of the same searches). Prints one
// JSON object per shape.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include <ATen/ATen.h>
#include <ATen/cuda/CUDAContext.h>
#include <CLI/CLI.hpp>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime_api.h>
#include <nlohmann/json.hpp>

#include "index/cuda/reduced_gemm.h"
#include "index/cuda/select_topk.h"
#include "index/cuda/small_search.h"

namespace {

using namespace semskip;

void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) {
    std::fprintf(stderr, "bench_small_search: %s: %s\n", what, cudaGetErrorString(e));
    std::exit(1);
  }
}

// GPU time per call of f, from events around reps back-to-back calls (after 20 untimed).
template <typename F>
double gpu_us(F&& f, int reps, cudaStream_t stream) {
  for (int i = 0; i < 20; ++i) f();
  cudaEvent_t a, b;
  check(cudaEventCreate(&a), "event");
  check(cudaEventCreate(&b), "event");
  check(cudaEventRecord(a, stream), "record");
  for (int i = 0; i < reps; ++i) f();
  check(cudaEventRecord(b, stream), "record");
  check(cudaEventSynchronize(b), "sync");
  float ms = 0.f;
  check(cudaEventElapsedTime(&ms, a, b), "elapsed");
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  return 1e3 * ms / reps;
}

double median(std::vector<double> t) {
  std::nth_element(t.begin(), t.begin() + t.size() / 2, t.end());
  return t[t.size() / 2];
}

struct Latency {
  double total_us, issue_us;  // medians: f then a stream synchronisation; f's return alone
};

// Latency of f followed by a stream synchronisation, and the host's time in f, each search on
// an idle device.
template <typename F>
Latency latency_us(F&& f, int reps, cudaStream_t stream) {
  for (int i = 0; i < 20; ++i) {
    f();
    check(cudaStreamSynchronize(stream), "sync");
  }
  std::vector<double> total(static_cast<size_t>(reps)), issue(static_cast<size_t>(reps));
  for (int i = 0; i < reps; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    f();
    const auto t1 = std::chrono::steady_clock::now();
    check(cudaStreamSynchronize(stream), "sync");
    total[i] = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
    issue[i] = std::chrono::duration<double, std::micro>(t1 - t0).count();
  }
  return {median(total), median(issue)};
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Stage times of a small half-precision exact search on the GPU"};
  std::string dtype = "fp16";
  int k = 10, reps = 200;
  std::vector<std::string> shapes;
  app.add_option("--dtype", dtype, "fp16 | bf16")->check(CLI::IsMember({"fp16", "bf16"}));
  app.add_option("--k", k, "results per query (k + 16 ≤ 32 candidates are rescored)")->check(CLI::Range(1, 16));
  app.add_option("--reps", reps, "timed repetitions")->check(CLI::Range(1, 100000));
  app.add_option("--shape", shapes, "N,DIM,QUERIES (repeatable)");
  CLI11_PARSE(app, argc, argv);
  if (shapes.empty())
    shapes = {"16384,256,128", "16384,256,16", "16384,256,1", "16384,64,128", "16384,896,128", "4096,256,128",
              "32768,256,128", "131072,256,128"};
  if (!at::hasCUDA()) {
    std::fprintf(stderr, "bench_small_search: no CUDA device\n");
    return 1;
  }
  if (!cuda::has_reduced_gemm()) {
    std::fprintf(stderr, "bench_small_search: no cuBLAS loaded in this process\n");
    return 1;
  }
  const at::ScalarType st = dtype == "fp16" ? at::kHalf : at::kBFloat16;
  const cuda::ScoreType type = dtype == "fp16" ? cuda::ScoreType::f16 : cuda::ScoreType::bf16;
  const auto gpu = at::TensorOptions().device(at::kCUDA);
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream().stream();
  for (const std::string& shape : shapes) {
    int64_t n_keys = 0, dim = 0, n = 0;
    if (std::sscanf(shape.c_str(), "%ld,%ld,%ld", &n_keys, &dim, &n) != 3 || n_keys < 1 || dim < 16 || n < 1) {
      std::fprintf(stderr, "bench_small_search: --shape '%s' is not N,DIM,QUERIES\n", shape.c_str());
      return 2;
    }
    at::manual_seed(0);
    const int64_t rows = (n_keys + 1023) / 1024 * 1024;
    at::Tensor keys_f = at::randn({rows, dim}, gpu);
    keys_f = keys_f / keys_f.norm(2, {1}, true);
    const at::Tensor keys = keys_f.to(st);
    const at::Tensor row_ids = at::arange(rows, gpu.dtype(at::kLong));
    const at::Tensor q = at::randn({n, dim}, gpu);
    const int sel = static_cast<int>(std::min<int64_t>(k + 16, n_keys));
    const int found = std::min(k, sel);
    // The two-launch path's buffers.
    const int64_t m = cuda::small_candidate_width(n_keys, n, sel);
    at::Tensor unit = at::empty({n, dim}, gpu);
    at::Tensor cand = at::empty({n, m}, gpu.dtype(at::kLong));
    at::Tensor sims = at::empty({n, found}, gpu);
    at::Tensor ids = at::empty({n, found}, gpu.dtype(at::kLong));
    at::Tensor ws = at::empty({std::max(cuda::finish_workspace_bytes(n, m, sel),
                                        cuda::select_workspace_bytes(n, n_keys, sel))},
                              gpu.dtype(at::kByte));
    auto* words = reinterpret_cast<uint64_t*>(cand.data_ptr<int64_t>());
    cuda::Rescore rescore;
    rescore.keys = keys.data_ptr();
    rescore.dim = dim;
    rescore.queries = unit.data_ptr<float>();
    rescore.k = found;
    rescore.row_ids = row_ids.data_ptr<int64_t>();
    rescore.out_sims = sims.data_ptr<float>();
    rescore.out_ids = ids.data_ptr<int64_t>();
    auto candidates = [&] {
      check(cuda::small_candidates(type, q.data_ptr<float>(), n, dim, keys.data_ptr(), n_keys, sel,
                                   unit.data_ptr<float>(), words, stream),
            "small_candidates");
    };
    auto finish = [&] {
      check(cuda::select_finish(type, words, n, m, m, sel, rescore.row_ids, nullptr, nullptr, ws.data_ptr(), stream,
                                &rescore),
            "select_finish");
    };
    auto fused = [&] {
      candidates();
      finish();
    };
    // The matmul path's buffers.
    const int64_t ld = std::min((n_keys + 7) / 8 * 8, rows);
    at::Tensor reduced = at::empty({n, dim}, gpu.dtype(st));
    at::Tensor scores = at::empty({n, ld}, gpu.dtype(st));
    auto normalise = [&] {
      check(cuda::normalize_rows(q.data_ptr<float>(), n, dim, unit.data_ptr<float>(), type, reduced.data_ptr(), stream),
            "normalize_rows");
    };
    auto matmul = [&] { at::mm_out(scores, reduced, keys.narrow(0, 0, ld).t()); };
    auto gemm = [&] {
      if (!cuda::reduced_gemm(at::cuda::getCurrentCUDABlasHandle(), type, keys.data_ptr(), reduced.data_ptr(), n, ld,
                              dim, scores.data_ptr())) {
        std::fprintf(stderr, "bench_small_search: cuBLAS refused the product\n");
        std::exit(1);
      }
    };
    auto select = [&] {
      check(cuda::select_topk(type, scores.data_ptr(), n, n_keys, ld, sel, rescore.row_ids, nullptr, nullptr,
                              ws.data_ptr(), stream, &rescore),
            "select_topk");
    };
    auto matmul_path = [&] {
      normalise();
      gemm();
      select();
    };
    auto matmul_path_aten = [&] {
      normalise();
      matmul();
      select();
    };
    // The direct product against at::mm_out's (both end in cuBLAS; its algorithm may differ).
    normalise();
    matmul();
    const at::Tensor via_aten = scores.to(at::kFloat);
    gemm();
    const double gemm_max_diff = (scores.to(at::kFloat) - via_aten).abs().max().item<double>();
    nlohmann::json j;
    j["dtype"] = dtype;
    j["n_keys"] = n_keys;
    j["dim"] = dim;
    j["n_queries"] = n;
    j["k"] = k;
    j["candidate_words_per_query"] = m;
    j["gpu_us"] = {{"small_candidates", gpu_us(candidates, reps, stream)},
                   {"select_finish", gpu_us(finish, reps, stream)},
                   {"two_launch_path", gpu_us(fused, reps, stream)},
                   {"normalize_rows", gpu_us(normalise, reps, stream)},
                   {"matmul", gpu_us(matmul, reps, stream)},
                   {"gemm_direct", gpu_us(gemm, reps, stream)},
                   {"select_topk", gpu_us(select, reps, stream)},
                   {"matmul_path", gpu_us(matmul_path, reps, stream)},
                   {"matmul_path_aten", gpu_us(matmul_path_aten, reps, stream)}};
    const Latency two = latency_us(fused, reps, stream), mat = latency_us(matmul_path, reps, stream);
    const Latency aten = latency_us(matmul_path_aten, reps, stream);
    const Latency mm = latency_us(matmul, reps, stream), gm = latency_us(gemm, reps, stream);
    const Latency nr = latency_us(normalise, reps, stream), sl = latency_us(select, reps, stream);
    j["latency_us"] = {{"two_launch_path", two.total_us}, {"matmul_path", mat.total_us},
                       {"matmul_path_aten", aten.total_us}, {"normalize_rows", nr.total_us},
                       {"matmul", mm.total_us},           {"gemm_direct", gm.total_us},
                       {"select_topk", sl.total_us}};
    j["issue_us"] = {{"two_launch_path", two.issue_us}, {"matmul_path", mat.issue_us},
                     {"matmul_path_aten", aten.issue_us}, {"normalize_rows", nr.issue_us},
                     {"matmul", mm.issue_us},           {"gemm_direct", gm.issue_us},
                     {"select_topk", sl.issue_us}};
    j["gemm_direct_max_abs_diff"] = gemm_max_diff;
    std::printf("%s\n", j.dump().c_str());
    std::fflush(stdout);
  }
  return 0;
}
