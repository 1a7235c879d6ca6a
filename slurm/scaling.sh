#!/usr/bin/env bash
# Submits one experiment at several sizes as a chain of slurm/run.sbatch jobs (each starts
# when the one before has ended, so the runs never share the machines they are timed on),
# and a last job (slurm/scaling-table.sbatch) that builds the scaling table and plot:
#   OUTDIR/scale-<size>.h5   each size's report
#   OUTDIR/scaling.h5, scaling.txt, scaling.png   `semskip report scaling` and its figure
#
#   slurm/scaling.sh --mode strong --nodes "1 2 4 8" --tasks-per-node 4 --requests 512 --out scaling/ \
#       -- --config exp.toml --device cuda
#   slurm/scaling.sh --mode weak --tasks "1 2" --requests 8 --out scaling/ -- --policy residual:p=2,r=7,tau=0.9
#
# --nodes sizes are node counts (--tasks-per-node tasks each); --tasks sizes are task counts
# on as few nodes as SLURM chooses (on one machine, several ranks stand in for several nodes).
# --requests is the job's total for strong scaling and the count per rank for weak scaling.
# Arguments after -- go to `semskip run`. SEMSKIP_SBATCH_ARGS: sbatch options of every job
# (account, partition, time, GPUs), split at blanks. Prints the job ids.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
usage() { echo "usage: slurm/scaling.sh --mode strong|weak (--nodes LIST | --tasks LIST) --requests N --out DIR [--tasks-per-node N] -- [semskip run options]" >&2; exit 2; }
mode="" nodes="" tasks="" per_node=1 requests="" out=""
while (($#)); do
  case $1 in
    --mode) mode=${2:-}; shift 2 ;;
    --nodes) nodes=${2:-}; shift 2 ;;
    --tasks) tasks=${2:-}; shift 2 ;;
    --tasks-per-node) per_node=${2:-}; shift 2 ;;
    --requests) requests=${2:-}; shift 2 ;;
    --out) out=${2:-}; shift 2 ;;
    --) shift; break ;;
    *) echo "slurm/scaling.sh: unknown option '$1'" >&2; usage ;;
  esac
done
[[ $mode == strong || $mode == weak ]] || { echo "slurm/scaling.sh: --mode must be strong or weak, got '$mode'" >&2; usage; }
[[ -n $nodes || -n $tasks ]] && [[ -z $nodes || -z $tasks ]] || { echo "slurm/scaling.sh: give one of --nodes and --tasks" >&2; usage; }
[[ $requests =~ ^[1-9][0-9]*$ ]] || { echo "slurm/scaling.sh: --requests must be a positive integer, got '$requests'" >&2; usage; }
[[ $per_node =~ ^[1-9][0-9]*$ ]] || { echo "slurm/scaling.sh: --tasks-per-node must be a positive integer, got '$per_node'" >&2; usage; }
[[ -n $out ]] || { echo "slurm/scaling.sh: --out is required" >&2; usage; }
read -r -a sizes <<<"${nodes:-$tasks}"
((${#sizes[@]} >= 2)) || { echo "slurm/scaling.sh: at least two sizes are needed" >&2; usage; }
for s in "${sizes[@]}"; do
  [[ $s =~ ^[1-9][0-9]*$ ]] || { echo "slurm/scaling.sh: size '$s' is not a positive integer" >&2; usage; }
done
read -r -a site <<<"${SEMSKIP_SBATCH_ARGS:-}"
export SEMSKIP_HOME=${SEMSKIP_HOME:-$(cd "$here/.." && pwd)}
mkdir -p "$out"
dep=()
ids=()
for s in "${sizes[@]}"; do
  if [[ -n $nodes ]]; then
    shape=(--nodes="$s" --ntasks-per-node="$per_node")
    ranks=$((s * per_node))
  else
    shape=(--ntasks="$s")
    ranks=$s
  fi
  n=$requests
  [[ $mode == weak ]] && n=$((requests * ranks))
  id=$(sbatch --parsable "${site[@]}" "${dep[@]}" "${shape[@]}" --job-name="semskip-scale-$s" \
    --output="$out/scale-$s.out" "$here/run.sbatch" run "$@" --max-requests "$n" --report "$out/scale-$s.h5" \
    --metadata "scaling_mode=$mode" --metadata "scaling_size=$s")
  id=${id%%;*}
  ids+=("$id")
  dep=(--dependency=afterok:"$id")
done
by=ranks
[[ -n $nodes ]] && by=nodes
table=$(sbatch --parsable "${site[@]}" "${dep[@]}" --output="$out/scaling.out" "$here/scaling-table.sbatch" "$mode" "$by" "$out")
echo "runs ${ids[*]}, table ${table%%;*}"
