#!/usr/bin/env bash
# kokkos:flat on the GPU: builds Kokkos 3.4 with its CUDA backend (scripts/gpu/build-kokkos-cuda.sh,
# which patches it for CUDA 13), then a second semskip configuration against it
# (build/cuda-kokkos, `semskip` only, beside the preset's build/cuda), and times kokkos:flat —
# now on Kokkos::Cuda — beside torch:flat on the same GPU and FAISS / torch on the CPU, on the
# keys a residual cache sees (`semskip workload states`, as the index study's `real` sweep) and
# on the small clustered cache of the study. Writes OUT_DIR/kokkos_index/ (logs, JSON,
# summary.txt naming the GPU) and OUT_DIR/kokkos_index.tgz.
#
#   bench/gpu/kokkos_index.sh OUT_DIR
#
# Settings: SEMSKIP_EXTRA_ROOT (as for build-cuda.sh), KOKKOS_TIMEOUT (s for the Kokkos build,
# default 300), THREADS (CPU threads, default every core).
set -uo pipefail
cd "$(dirname "$0")/../.."
out="${1:?usage: kokkos_index.sh OUT_DIR}"
res="$out/kokkos_index"
mkdir -p "$res"
res="$(realpath "$res")"
pack() { tar czf "$out/kokkos_index.tgz" -C "$out" kokkos_index; }
trap pack EXIT
say() { echo "[kokkos-index] $*" | tee -a "$res/summary.txt" >&2; }
threads="${THREADS:-$(getconf _NPROCESSORS_ONLN)}"
export OMP_NUM_THREADS="$threads" OPENBLAS_NUM_THREADS="$threads"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader > "$res/gpu.txt" 2>&1 || true
say "gpu: $(cat "$res/gpu.txt")"

prefix="$(pwd)/build/kokkos-cuda/prefix"
t0=$(date +%s)
KOKKOS_LOG="$res/build_kokkos_cuda.log" SEMSKIP_KOKKOS_ROOT="$prefix" timeout "${KOKKOS_TIMEOUT:-300}" \
  scripts/gpu/build-kokkos-cuda.sh > "$res/kokkos_cuda.txt" 2>&1
rc=$?
say "$(tail -n 1 "$res/kokkos_cuda.txt") (exit $rc, $(( $(date +%s) - t0 )) s)"
[ $rc = 0 ] || { cat "$res/kokkos_cuda.txt" >&2; exit 1; }

t0=$(date +%s)
if ! SEMSKIP_BUILD_DIR=build/cuda-kokkos SEMSKIP_TARGETS=semskip SEMSKIP_BUILD_TESTS=OFF \
     SEMSKIP_CMAKE_ARGS="-DSEMSKIP_WITH_KOKKOS=ON -DKokkos_ROOT=$prefix -DSEMSKIP_REQUIRE_PYTHON_MODULES=OFF -DSEMSKIP_HARDENING_TESTS=OFF" \
     scripts/gpu/build-cuda.sh > "$res/build_semskip.log" 2>&1; then
  say "semskip with the CUDA Kokkos: build FAILED ($(( $(date +%s) - t0 )) s):"
  grep -m 15 -E "error|Error" "$res/build_semskip.log" | tee -a "$res/summary.txt" >&2
  exit 1
fi
say "semskip with the CUDA Kokkos built in $(( $(date +%s) - t0 )) s ($(grep -m1 'semskip: Kokkos' "$res/build_semskip.log" | sed 's/^-- //'))"
bin=build/cuda-kokkos/bin/semskip
space="$("$bin" index-bench --index kokkos:flat --n 64 --dim 8 --queries 1 --k 1 --repeat 1 --warmup 0 2>&1 >/dev/null | sed -n 's/.*kokkos execution space: //p')"
say "kokkos execution space: ${space:-unknown}"

"$bin" workload states text "text:workloads/samples/psalms.txt" sharegpt lmsys jsonl --layer 2 \
  --out "$res/real_keys.npy" > "$res/real_keys.txt" 2>&1 || { say "workload states failed"; cat "$res/real_keys.txt" >&2; exit 1; }
backends=(--index kokkos:flat --index "torch:flat|device=cuda" --index "torch:flat|device=cuda|dtype=fp16" --index torch:flat)
"$bin" index-bench --index faiss:Flat --n 8 --dim 4 --queries 1 --k 1 --repeat 1 --warmup 0 >/dev/null 2>&1 && backends+=(--index faiss:Flat)
for data in real clustered; do
  if [ $data = real ]; then d=(--data "$res/real_keys.npy"); q=(--queries 256 --warmup 1 --repeat 8); else d=(--data clustered --dim 256); q=(--queries 128 --warmup 5 --repeat 50); fi
  if timeout 200 "$bin" index-bench "${backends[@]}" "${d[@]}" --n 16384 --k 10 "${q[@]}" --threads "$threads" --json \
       > "$res/$data.json" 2> "$res/$data.log"; then
    say "sweep $data done"
  else
    say "sweep $data FAILED"; tail -n 5 "$res/$data.log" | tee -a "$res/summary.txt" >&2
  fi
done
"${PYTHON:-python3}" - "$res" <<'PY' | tee -a "$res/summary.txt"
import json, pathlib, sys
res = pathlib.Path(sys.argv[1])
for name in ["real", "clustered"]:
    p = res / f"{name}.json"
    if not p.exists() or p.stat().st_size == 0:
        continue
    print(f"{name}: N = 16384, d = 256, k = 10")
    print(f"  {'index':34} {'device':6} {'queries/s':>10} {'p50 ms':>8} {'recall@1':>8} {'recall@10':>9}")
    for r in json.loads(p.read_text()):
        print(f"  {r['descriptor']:34} {r['device']:6} {r['queries_per_s']:10.0f} {r['latency_p50_s'] * 1e3:8.3f} "
              f"{r['recall_at_1']:8.3f} {r['recall_at_k']:9.3f}")
PY
