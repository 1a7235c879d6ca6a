#!/usr/bin/env bash
# Every GPU measurement of the repository on one machine, in phases that each fit a bounded
# job (so that a machine lent for short commands can run them back to back, keeping build/):
#
#   scripts/gpu/measure.sh faiss  OUT   FAISS 1.7.3 with GPU support (scripts/gpu/build-faiss-gpu.sh)
#   scripts/gpu/measure.sh build  OUT   semskip, bench_engine and the GPU tests (cuda preset,
#                                       against that FAISS when it is there)
#   scripts/gpu/measure.sh checks OUT   fp32 parity on every fixture (eager and sdpa), the
#                                       communicator tests on NCCL, the GPU index tests
#   scripts/gpu/measure.sh engine OUT   bench/gpu/engine_side_by_side.sh (semskip beside
#                                       transformers, skipping included)
#   scripts/gpu/measure.sh index  OUT   bench/gpu/index_study.sh on the binary built above
#   scripts/gpu/measure.sh nccl-run OUT semskip run --comm nccl in a world of one on tiny-moe
#                                       (its MoE layers through NCCL's all-to-alls) and on
#                                       tiny-dense, and semskip parity --comm nccl on the qwen2moe
#                                       fixture; prints each report's communicator and its
#                                       /per_rank_layer dispatch columns
#   scripts/gpu/measure.sh all    OUT   all six in order
#
# Each phase writes OUT/<phase>.tgz (logs and results) and names the GPU in OUT/machine.txt.
# Settings: ENGINE_* are passed to engine_side_by_side.sh without the prefix (ENGINE_REPS=2 →
# REPS=2); INDEX_* to index_study.sh as they are. nccl-run takes SEMSKIP_BIN (default
# build/cuda/bin/semskip), COMM (nccl) and DEVICE (cuda): SEMSKIP_BIN=build/cpu/bin/semskip
# COMM=mpi DEVICE=cpu runs the same commands on a CPU build.
set -uo pipefail
cd "$(dirname "$0")/../.."
phase="${1:?usage: measure.sh faiss|build|checks|engine|index|nccl-run|all OUT}"
out="${2:?usage: measure.sh PHASE OUT}"
mkdir -p "$out"
export NCCL_NVLS_ENABLE=0
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader > "$out/machine.txt" 2>&1 || true
echo "git_revision: $(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)" >> "$out/machine.txt"

source scripts/gpu/extra-root.sh
extra_root() {
  semskip_extra_root
  if [ -f build/faiss-gpu/prefix/lib/libfaiss.so ]; then
    export SEMSKIP_FAISS_ROOT="$(pwd)/build/faiss-gpu/prefix"
    export LD_LIBRARY_PATH="$SEMSKIP_FAISS_ROOT/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  fi
}

run_faiss() {
  local log="$out/faiss"
  mkdir -p "$log"
  extra_root
  local t0=$(date +%s)
  if faiss_root="$(scripts/gpu/build-faiss-gpu.sh 2> "$log/faiss.log" | tail -n 1)" && [ -n "$faiss_root" ]; then
    export SEMSKIP_FAISS_ROOT="$faiss_root"
    export LD_LIBRARY_PATH="$faiss_root/lib:$LD_LIBRARY_PATH"
    echo "faiss-gpu: built in $(( $(date +%s) - t0 )) s" | tee -a "$log/summary.txt"
  else
    echo "faiss-gpu: FAILED after $(( $(date +%s) - t0 )) s" | tee -a "$log/summary.txt"
    grep -m 20 -E "error" "$log/faiss.log" | tee -a "$log/summary.txt"
  fi
  tar czf "$out/faiss.tgz" -C "$out" faiss machine.txt
}

run_build() {
  local log="$out/build"
  mkdir -p "$log"
  extra_root
  local t0=$(date +%s)
  if SEMSKIP_TARGETS="semskip bench_engine semskip_comm_tests semskip_index_tests" SEMSKIP_BUILD_TESTS=ON \
      SEMSKIP_CMAKE_ARGS="${SEMSKIP_CMAKE_ARGS:-} -DSEMSKIP_REQUIRE_PYTHON_MODULES=OFF -DSEMSKIP_HARDENING_TESTS=OFF" \
      scripts/gpu/build-cuda.sh > "$log/semskip.log" 2>&1; then
    echo "semskip (cuda preset): built in $(( $(date +%s) - t0 )) s" | tee -a "$log/summary.txt"
  else
    echo "semskip (cuda preset): FAILED" | tee -a "$log/summary.txt"
    grep -m 40 -E "error|Error" "$log/semskip.log" | tee -a "$log/summary.txt"
  fi
  tar czf "$out/build.tgz" -C "$out" build machine.txt
}

run_checks() {
  local res="$out/checks"
  mkdir -p "$res"
  extra_root
  scripts/gpu/parity-cuda.sh "$res/parity" > "$res/parity.txt" 2>&1
  echo "parity exit status $?" >> "$res/parity.txt"
  cat "$res/parity.txt"
  timeout 120 mpirun --allow-run-as-root -n 1 -x SEMSKIP_TEST_COMM=nccl -x NCCL_NVLS_ENABLE=0 -x LD_LIBRARY_PATH \
    build/cuda/tests/comm/semskip_comm_tests > "$res/comm_nccl.txt" 2>&1
  echo "exit status $?" >> "$res/comm_nccl.txt"
  grep -E "^\[  (PASSED|FAILED) |exit status|OK \]|FAILED" "$res/comm_nccl.txt" | head -30
  tar czf "$out/checks.tgz" -C "$out" checks machine.txt
}

run_engine() {
  extra_root
  env $(env | sed -n 's/^ENGINE_//p') SKIP_BUILD=1 TAR_TO="$out/engine.tgz" \
    bench/gpu/engine_side_by_side.sh "$out/engine" 2>&1 | tail -n 60
}

run_nccl_run() {
  local res="$out/nccl-run"
  mkdir -p "$res"
  extra_root
  export LD_LIBRARY_PATH="${LD_LIBRARY_PATH:-}" OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
  local bin="${SEMSKIP_BIN:-build/cuda/bin/semskip}" comm="${COMM:-nccl}" device="${DEVICE:-cuda}"
  local one=(timeout 300 mpirun --allow-run-as-root -n 1 -x NCCL_NVLS_ENABLE=0 -x LD_LIBRARY_PATH -x OMP_NUM_THREADS)
  local model rc
  for model in tiny-moe tiny-dense; do
    "${one[@]}" "$bin" run --model "models/$model" --comm "$comm" --device "$device" --max-requests 8 \
      --calib-requests 2 --batch 4 --policy none --policy static:k=1 --quiet --force \
      --report "$res/run_$model.h5" > "$res/run_$model.txt" 2>&1
    rc=$?
    echo "run $model --comm $comm --device $device: exit status $rc" | tee -a "$res/summary.txt"
    "$bin" report "$res/run_$model.h5" 2>&1 | grep -E "^ *(comm|ep_size|world_size)\b" | tee -a "$res/summary.txt"
    # The dense model has no MoE layer, hence no /per_rank_layer.
    [ "$model" = tiny-moe ] && "$bin" report show "$res/run_$model.h5" --table /per_rank_layer 2>&1 | tee -a "$res/summary.txt"
  done
  "${one[@]}" "$bin" parity --comm "$comm" --device "$device" --model tests/data/parity/qwen2moe \
    --reference tests/data/parity/qwen2moe/reference.safetensors > "$res/parity_qwen2moe.txt" 2>&1
  rc=$?
  echo "parity qwen2moe --comm $comm --device $device: exit status $rc" | tee -a "$res/summary.txt"
  grep -E '^  "(comm|device|pass)"' "$res/parity_qwen2moe.txt" | tee -a "$res/summary.txt"
  tar czf "$out/nccl-run.tgz" -C "$out" nccl-run machine.txt
}

run_index() {
  extra_root
  INDEX_STUDY_BUILD=0 bench/gpu/index_study.sh "$out" 2>&1 | tail -n 60
}

case "$phase" in
  faiss) run_faiss ;;
  build) run_build ;;
  checks) run_checks ;;
  engine) run_engine ;;
  index) run_index ;;
  nccl-run) run_nccl_run ;;
  all) run_faiss; run_build; run_checks; run_engine; run_index; run_nccl_run ;;
  *) echo "measure.sh: unknown phase '$phase' (faiss, build, checks, engine, index, nccl-run, all)" >&2; exit 2 ;;
esac
