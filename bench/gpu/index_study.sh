#!/usr/bin/env bash
# The vector-index study on one machine, in one run: builds FAISS with its GPU indexes
# (scripts/gpu/build-faiss-gpu.sh) and semskip against it (scripts/gpu/build-cuda.sh), then runs
# `semskip index-bench` on the same data for every backend the build has (FAISS CPU on all
# cores, faiss-gpu, torch:flat on CPU and GPU in float32 / fp16 / bf16, kokkos:flat where
# compiled), tries Kokkos' CUDA backend (scripts/gpu/build-kokkos-cuda.sh), and writes JSON,
# a markdown summary and SVG plots (bench/gpu/index_study.py), packed as
# OUT_DIR/index_study.tgz (rewritten after every stage, so a run cut short keeps what it
# finished).
#
#   bench/gpu/index_study.sh OUT_DIR
#
# The sweeps (each one index-bench call, so every row of a sweep shares its data and its exact
# float64 answers; IVF rows that differ only in nprobe reuse one trained index):
#   headline   N = 1M, d = 896, 256 queries, k = 10: exact GPU search against the plain fp16
#              matmul (+ top-k) of the same sizes (--reference-json), FAISS CPU and GPU
#   small      N = 16k, d = 256, 128 queries, k = 10: the latency of a small cache, HNSW too
#   ann        N = 100k, d = 256, 32 queries: IVF nprobe and HNSW efSearch sweeps (recall vs QPS)
#   step       engine-step mode (--query-device cuda --value-dim 896): the lookup cost of one
#              decode step of a batch against the cache size, GPU index vs CPU index with the
#              copies, at the batch sizes of real runs
#   real       keys a residual cache really sees: `semskip workload states` of the shipped
#              sample workloads (every prompt token's residual after block 2 of the embedded
#              tiny-dense model, d = 256, about 20k rows; keys the first 16384, queries the
#              rows after them), every backend, recall against exact search
#
# The run keeps to INDEX_STUDY_DEADLINE_S seconds (default 540, under a 10-minute job limit):
# a sweep that would start later is skipped and named in skipped.txt, one that runs long is
# stopped there. Builds are kept (FAISS is not rebuilt once installed, semskip builds
# incrementally), so when the builds alone take most of that time, running the script again
# measures everything.
#
# Settings (environment):
#   INDEX_STUDY_WORK      working folder (default build/index_study); OUT_DIR gets the tarball
#   INDEX_STUDY_BUILD=0   use an existing binary (SEMSKIP_BIN, default build/cuda/bin/semskip)
#   INDEX_STUDY_SIZES=tiny  small sizes everywhere (the CPU check of the pipeline, a test);
#                     =cpu   sizes a CPU-only machine finishes in minutes (headline N = 100k)
#   INDEX_STUDY_KOKKOS=0  skip the Kokkos CUDA attempt; KOKKOS_TIMEOUT (s, default 180)
#   INDEX_STUDY_SWEEPS    the sweeps to run (default "headline small step ann real")
#   THREADS               CPU threads for FAISS, OpenBLAS and LibTorch (default: every core)
#   PYTHON                the Python for the summary (python3; needs no packages)
set -uo pipefail
cd "$(dirname "$0")/../.."
out="${1:?usage: index_study.sh OUT_DIR}"
mkdir -p "$out"
out="$(realpath "$out")"
# The working folder stays outside OUT_DIR, which receives the one tarball.
work="${INDEX_STUDY_WORK:-$(pwd)/build/index_study}"
res="$work/index_study"
rm -rf "$res"
mkdir -p "$res"
t0=$(date +%s)
deadline="${INDEX_STUDY_DEADLINE_S:-540}"
left() { echo $(( deadline - ($(date +%s) - t0) )); }
say() { echo "[index-study +$(( $(date +%s) - t0 ))s] $*" >&2; }
pack() { tar czf "$out/index_study.tgz" -C "$work" index_study; }
trap pack EXIT
py="${PYTHON:-python3}"
cores="$(getconf _NPROCESSORS_ONLN)"  # nproc would follow OMP_NUM_THREADS
threads="${THREADS:-$cores}"
# FAISS's OpenMP loops and OpenBLAS's pool never nest (FAISS calls BLAS outside its parallel
# regions), so both get every core; LibTorch's intra-op pool the same (--threads).
export OMP_NUM_THREADS="$threads" OPENBLAS_NUM_THREADS="$threads" MKL_NUM_THREADS="$threads"
have_gpu=0
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then have_gpu=1; fi

{
  echo "date_utc: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "cpu: $(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -n 1)"
  echo "cores: $cores"
  echo "memory: $(free -g 2>/dev/null | awk '/^Mem:/ {print $2 " GiB"}')"
  echo "threads: OMP_NUM_THREADS=$OMP_NUM_THREADS OPENBLAS_NUM_THREADS=$OPENBLAS_NUM_THREADS --threads $threads"
  if [ $have_gpu = 1 ]; then
    echo "gpu: $(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | head -n 1)"
    [ -x "${CUDA_HOME:-/usr/local/cuda}/bin/nvcc" ] && echo "cuda: $("${CUDA_HOME:-/usr/local/cuda}/bin/nvcc" --version | tail -n 1)"
  else
    echo "gpu: none"
  fi
  echo "git_revision: $(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)"
} > "$res/machine.txt"
cat "$res/machine.txt" >&2

bin="${SEMSKIP_BIN:-build/cuda/bin/semskip}"
if [ "${INDEX_STUDY_BUILD:-1}" = 1 ]; then
  # Libraries the GPU machine lacks (toml++, PCRE2, utf8proc), from the Debian .debs.
  source scripts/gpu/extra-root.sh
  semskip_extra_root
  say "building FAISS 1.7.3 with GPU support"
  if faiss_root="$(scripts/gpu/build-faiss-gpu.sh 2> "$res/build_faiss_gpu.log" | tail -n 1)" && [ -n "$faiss_root" ]; then
    export SEMSKIP_FAISS_ROOT="$faiss_root"
    export LD_LIBRARY_PATH="$faiss_root/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    say "FAISS GPU in $faiss_root"
  else
    say "FAISS GPU build failed (build_faiss_gpu.log):"; grep -m 10 -E "error|Error" "$res/build_faiss_gpu.log" >&2
  fi
  pack
  build_semskip() {
    SEMSKIP_TARGETS=semskip SEMSKIP_BUILD_TESTS=OFF scripts/gpu/build-cuda.sh >> "$res/build_semskip.log" 2>&1
  }
  say "building semskip and the index tests (cuda preset)"
  # With the index tests where the machine has GoogleTest: the GPU backends are checked against
  # the brute-force reference before they are timed.
  if SEMSKIP_TARGETS="semskip semskip_index_tests" SEMSKIP_BUILD_TESTS=ON scripts/gpu/build-cuda.sh \
       >> "$res/build_semskip.log" 2>&1; then
    :
  elif ! build_semskip; then
    say "build with faiss-gpu failed; again without the faiss-gpu backends"
    grep -m 10 -E "error" "$res/build_semskip.log" >&2
    if ! SEMSKIP_CMAKE_ARGS="-DSEMSKIP_WITH_FAISS_GPU=OFF" build_semskip; then
      say "again without FAISS"
      SEMSKIP_CMAKE_ARGS="-DSEMSKIP_WITH_FAISS=OFF" SEMSKIP_FAISS_ROOT= build_semskip || { say "semskip build failed"; tail -n 30 "$res/build_semskip.log" >&2; exit 1; }
    fi
  fi
  pack
fi
[ -x "$bin" ] || { say "no semskip binary at $bin"; exit 1; }
tests_bin="$(dirname "$bin")/../tests/index/semskip_index_tests"
if [ $have_gpu = 1 ] && [ -x "$tests_bin" ]; then
  say "GPU backends against the reference (semskip_index_tests, CUDA and faiss-gpu cases)"
  timeout 300 "$tests_bin" --gtest_filter='*cuda*:*faiss_gpu*:IndexFactory.*:TorchReducedPrecision.*' \
    > "$res/gpu_index_tests.txt" 2>&1
  echo "exit status $?" >> "$res/gpu_index_tests.txt"
  grep -E "^\[  (PASSED|FAILED) " "$res/gpu_index_tests.txt" >&2
fi
backends="$("$bin" index-bench --index nope:x 2>&1 | sed -n 's/.*known: \([^)]*\)).*/\1/p')"
has() { "$bin" index-bench --index "$1" --n 64 --dim 8 --queries 1 --k 1 --repeat 1 --warmup 0 >/dev/null 2>&1; }
echo "backends known: $backends" >> "$res/machine.txt"
if has "kokkos:flat"; then
  echo "kokkos execution space: $("$bin" index-bench --index kokkos:flat --n 64 --dim 8 --queries 1 --k 1 --repeat 1 --warmup 0 2>&1 >/dev/null | sed -n 's/.*kokkos execution space: //p')" >> "$res/machine.txt"
fi

# Sizes: the issue's, or tiny ones for the CPU check.
if [ "${INDEX_STUDY_SIZES:-full}" = tiny ]; then
  big="--n 3000 --dim 32 --queries 16 --k 10 --warmup 1 --repeat 3"; nlist_big=16; nlist_cpu=16
  small="--n 1000 --dim 16 --queries 8 --k 10 --warmup 2 --repeat 5"
  ann="--n 2000 --dim 16 --queries 8 --k 10 --warmup 1 --repeat 3"; nlist_ann=16
  step_n="512,2048"; step_q="4,16"; step_dim=16; step_value=16; step_rep="--warmup 2 --repeat 5"
  probes="1 4"; efs="16 64"
elif [ "${INDEX_STUDY_SIZES:-full}" = cpu ]; then
  big="--n 100000 --dim 896 --queries 256 --k 10 --warmup 1 --repeat 5"; nlist_big=256; nlist_cpu=256
  small="--n 16384 --dim 256 --queries 128 --k 10 --warmup 5 --repeat 50"
  ann="--n 100000 --dim 256 --queries 32 --k 10 --warmup 2 --repeat 10"; nlist_ann=1024
  step_n="1024,16384,131072"; step_q="8,256"; step_dim=896; step_value=896; step_rep="--warmup 3 --repeat 15"
  probes="1 4 16 64"; efs="16 32 64 128"
else
  big="--n 1000000 --dim 896 --queries 256 --k 10 --warmup 2 --repeat 8"; nlist_big=4096; nlist_cpu=1024
  small="--n 16384 --dim 256 --queries 128 --k 10 --warmup 20 --repeat 200"
  ann="--n 100000 --dim 256 --queries 32 --k 10 --warmup 3 --repeat 30"; nlist_ann=1024
  step_n="1024,16384,262144"; step_q="8,256"; step_dim=896; step_value=896; step_rep="--warmup 5 --repeat 30"
  probes="1 4 16 64"; efs="16 32 64 128"
fi

# Backends of each sweep: whatever this build and machine offer.
gpu_exact=(); gpu_step=()
if [ $have_gpu = 1 ] && has "torch:flat|device=cuda"; then
  gpu_exact+=(--index "torch:flat|device=cuda" --index "torch:flat|device=cuda|dtype=fp16" --index "torch:flat|device=cuda|dtype=bf16")
  gpu_step+=(--index "torch:flat|device=cuda|dtype=fp16")
fi
faiss_gpu=0
if [ $have_gpu = 1 ] && has "faiss-gpu:Flat"; then faiss_gpu=1; fi
cpu_faiss=0
if has "faiss:Flat"; then cpu_faiss=1; fi
kokkos=0
if has "kokkos:flat"; then kokkos=1; fi

sweeps=" ${INDEX_STUDY_SWEEPS:-headline small step ann real} "
bench() {  # name, index-bench arguments...
  local name="$1"; shift
  case "$sweeps" in *" $name "*) ;; *) say "sweep $name not selected (INDEX_STUDY_SWEEPS)"; return ;; esac
  if [ "$(left)" -lt 30 ]; then
    say "sweep $name skipped: the time is up"; echo "$name: skipped at +$(( $(date +%s) - t0 ))s" >> "$res/skipped.txt"
    return
  fi
  say "sweep $name"
  if timeout "$(left)" "$bin" index-bench "$@" --threads "$threads" --json --report "$res/$name.h5" --force \
       > "$res/$name.json" 2> "$res/$name.log"; then
    say "sweep $name done"
  else
    say "sweep $name FAILED (see $name.log)"; tail -n 5 "$res/$name.log" >&2
  fi
  pack
}

args=("${gpu_exact[@]}")
if [ $faiss_gpu = 1 ]; then
  args+=(--index "faiss-gpu:Flat" --index "faiss-gpu:Flat|fp16=1")
  for p in $probes; do args+=(--index "faiss-gpu:IVF$nlist_big,Flat|nprobe=$p"); done
  args+=(--index "faiss-gpu:IVF$nlist_big,SQ8|nprobe=16" --index "faiss-gpu:IVF$nlist_big,PQ32|nprobe=16")
fi
if [ $cpu_faiss = 1 ]; then
  args+=(--index faiss:Flat)
  for p in $probes; do args+=(--index "faiss:IVF$nlist_cpu,Flat|nprobe=$p"); done
fi
args+=(--index torch:flat)
# shellcheck disable=SC2086
bench headline "${args[@]}" --data clustered $big --reference-json "$res/headline_reference.json"

args=("${gpu_exact[@]}")
[ $faiss_gpu = 1 ] && args+=(--index "faiss-gpu:Flat")
[ $cpu_faiss = 1 ] && args+=(--index faiss:Flat --index "faiss:HNSW32|efSearch=64")
args+=(--index torch:flat)
[ $kokkos = 1 ] && args+=(--index kokkos:flat)
# shellcheck disable=SC2086
bench small "${args[@]}" --data clustered $small --reference-json "$res/small_reference.json"


step_dev=cpu
[ ${#gpu_step[@]} -gt 0 ] && step_dev=cuda
args=("${gpu_step[@]}")
[ $faiss_gpu = 1 ] && args+=(--index "faiss-gpu:Flat")
[ $cpu_faiss = 1 ] && args+=(--index faiss:Flat)
args+=(--index torch:flat)
# shellcheck disable=SC2086
bench step "${args[@]}" --data clustered --n "$step_n" --dim "$step_dim" --queries "$step_q" --k 1 \
  --query-device "$step_dev" --value-dim "$step_value" $step_rep

args=()
if [ $faiss_gpu = 1 ]; then
  for p in $probes; do args+=(--index "faiss-gpu:IVF$nlist_ann,Flat|nprobe=$p"); done
  for p in $probes; do args+=(--index "faiss-gpu:IVF$nlist_ann,SQ8|nprobe=$p"); done
  for p in $probes; do args+=(--index "faiss-gpu:IVF$nlist_ann,PQ32|nprobe=$p"); done
fi
if [ $cpu_faiss = 1 ]; then
  for p in $probes; do args+=(--index "faiss:IVF$nlist_ann,Flat|nprobe=$p"); done
  for p in $probes; do args+=(--index "faiss:IVF$nlist_ann,SQ8|nprobe=$p"); done
  for e in $efs; do args+=(--index "faiss:HNSW32|efSearch=$e"); done
fi
[ ${#gpu_exact[@]} -gt 0 ] && args+=(--index "torch:flat|device=cuda|dtype=fp16")
args+=(--index torch:flat)
# shellcheck disable=SC2086
bench ann "${args[@]}" --data clustered $ann

# Real keys: the residual stream of the embedded model over the shipped samples, in workload
# order (later tokens query the cache of earlier ones, as in a run).
real_n=16384; real_q="--queries 256 --warmup 1 --repeat 8"; real_nlist=128
[ "${INDEX_STUDY_SIZES:-full}" = tiny ] && { real_n=2000; real_q="--queries 16 --warmup 1 --repeat 3"; real_nlist=16; }
case "$sweeps" in *" real "*)
  if "$bin" workload states text "text:workloads/samples/psalms.txt" sharegpt lmsys jsonl --layer 2 \
       --out "$work/real_keys.npy" > "$res/real_keys.txt" 2>&1; then
    args=("${gpu_exact[@]}")
    if [ $faiss_gpu = 1 ]; then
      args+=(--index "faiss-gpu:Flat" --index "faiss-gpu:IVF$real_nlist,Flat|nprobe=8")
      args+=(--index "faiss-gpu:IVF$real_nlist,SQ8|nprobe=8" --index "faiss-gpu:IVF$real_nlist,PQ32|nprobe=8")
    fi
    if [ $cpu_faiss = 1 ]; then
      args+=(--index faiss:Flat --index "faiss:IVF$real_nlist,Flat|nprobe=8" --index "faiss:IVF$real_nlist,SQ8|nprobe=8")
      args+=(--index "faiss:IVF$real_nlist,PQ32|nprobe=8" --index "faiss:HNSW32")
    fi
    args+=(--index torch:flat)
    [ $kokkos = 1 ] && args+=(--index kokkos:flat)
    # shellcheck disable=SC2086
    bench real "${args[@]}" --data "$work/real_keys.npy" --n "$real_n" --k 10 $real_q
  else
    say "real keys: workload states failed (real_keys.txt)"; tail -n 3 "$res/real_keys.txt" >&2
  fi ;;
esac

kokkos_time=$(( $(left) - 20 ))
[ "$kokkos_time" -gt "${KOKKOS_TIMEOUT:-180}" ] && kokkos_time="${KOKKOS_TIMEOUT:-180}"
if [ $have_gpu = 1 ] && [ "${INDEX_STUDY_KOKKOS:-1}" = 1 ] && [ "$kokkos_time" -lt 60 ]; then
  echo "kokkos-cuda: skipped, ${kokkos_time}s left of the run's time" > "$res/kokkos_cuda.txt"
elif [ $have_gpu = 1 ] && [ "${INDEX_STUDY_KOKKOS:-1}" = 1 ]; then
  say "trying Kokkos with CUDA (at most ${kokkos_time}s)"
  KOKKOS_LOG="$res/build_kokkos_cuda.log" timeout "$kokkos_time" scripts/gpu/build-kokkos-cuda.sh \
    > "$res/kokkos_cuda.txt" 2>&1 || echo "kokkos-cuda: stopped (exit $?; 124 is the time limit)" >> "$res/kokkos_cuda.txt"
  tail -n 1 "$res/kokkos_cuda.txt" >&2
fi

say "summary"
"$py" bench/gpu/index_study.py "$res" > "$res/index_study.md" 2> "$res/summary.log" || { say "summary failed"; cat "$res/summary.log" >&2; }
rm -f "$res"/*.h5.tmp
pack
say "done: $out/index_study.tgz"
cat "$res/index_study.md" 2>/dev/null | head -n 60 >&2
