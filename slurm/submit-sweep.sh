#!/usr/bin/env bash
# Submits a sweep: the job array of slurm/sweep.sbatch over GRID and, after it, the merge of its
# reports into OUTDIR/sweep.h5 (slurm/merge.sbatch, --dependency=afterok). Prints both job ids.
#
#   slurm/submit-sweep.sh slurm/grid.example out/ --max-requests 64
#
# SEMSKIP_SBATCH_ARGS: sbatch options for both jobs, split at blanks (e.g. "-A MYPROJ -p icelake").
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
(($# >= 2)) || { echo "usage: slurm/submit-sweep.sh GRID OUTDIR [semskip run options]" >&2; exit 2; }
grid=$1 out=$2
n=$(SEMSKIP_HOME=${SEMSKIP_HOME:-$here/..} bash "$here/sweep.sbatch" --count "$grid")
read -r -a site <<<"${SEMSKIP_SBATCH_ARGS:-}"
mkdir -p "$out"
export SEMSKIP_HOME=${SEMSKIP_HOME:-$(cd "$here/.." && pwd)}
array=$(sbatch --parsable "${site[@]}" --array=0-$((n - 1)) --output="$out/task-%a.out" "$here/sweep.sbatch" "$@")
array=${array%%;*}
merge=$(sbatch --parsable "${site[@]}" --dependency=afterok:"$array" --output="$out/merge.out" "$here/merge.sbatch" \
  "$out/sweep.h5" "$out" --vary model --vary policies --vary indexes)
echo "array $array ($n tasks), merge ${merge%%;*}"
