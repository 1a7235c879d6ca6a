# Settings and helpers the batch scripts of slurm/ share; sourced, never run. Every setting is
# an environment variable with a default, so a site changes none of the scripts (README.md):
#   SEMSKIP_HOME      the semskip source tree (scripts/plot_report.py, slurm/) [the folder the
#                     job was submitted from]
#   SEMSKIP_BIN       the semskip binary [semskip on PATH, else $SEMSKIP_HOME/build/cpu/bin/semskip]
#   SEMSKIP_ENV_FILE  a file sourced first, for `module load` lines and the like [none]
#   SEMSKIP_MPI       srun's --mpi plugin [pmix]
#   SEMSKIP_CPU_BIND  srun's --cpu-bind; none leaves it out [cores]
#   SEMSKIP_SRUN_ARGS further srun options, split at blanks [none]
# sbatch has copied the batch script into its spool folder, so paths come from these variables
# and SLURM_SUBMIT_DIR, never from $0.

semskip_die() { echo "semskip job ${SLURM_JOB_ID:-?}: $*" >&2; exit 2; }

SEMSKIP_HOME=${SEMSKIP_HOME:-${SLURM_SUBMIT_DIR:-$PWD}}
if [[ -n ${SEMSKIP_ENV_FILE:-} ]]; then
  [[ -r $SEMSKIP_ENV_FILE ]] || semskip_die "SEMSKIP_ENV_FILE '$SEMSKIP_ENV_FILE' is not a readable file"
  # shellcheck disable=SC1090
  source "$SEMSKIP_ENV_FILE"
fi
if [[ -z ${SEMSKIP_BIN:-} ]]; then
  SEMSKIP_BIN=$(command -v semskip || true)
  [[ -n $SEMSKIP_BIN ]] || SEMSKIP_BIN=$SEMSKIP_HOME/build/cpu/bin/semskip
fi
[[ -x $SEMSKIP_BIN ]] || semskip_die "SEMSKIP_BIN '$SEMSKIP_BIN' is not an executable (set SEMSKIP_BIN, or SEMSKIP_HOME to a built source tree)"
SEMSKIP_MPI=${SEMSKIP_MPI:-pmix}
SEMSKIP_CPU_BIND=${SEMSKIP_CPU_BIND:-cores}
# One OpenMP/LibTorch thread per CPU of the task, so ranks do not oversubscribe their cores.
export OMP_NUM_THREADS=${SLURM_CPUS_PER_TASK:-${OMP_NUM_THREADS:-1}}

# The job's settings as `--metadata` options of run and index-bench, so the report records how
# it was submitted (the allocation itself semskip records from SLURM's variables).
semskip_job_metadata() {
  local limit
  limit=$(squeue -h -j "${SLURM_JOB_ID:-0}" -o %l 2>/dev/null | head -n1 || true)
  printf '%s\n' --metadata "sbatch_script=${SEMSKIP_SCRIPT:-run.sbatch}" \
    --metadata "sbatch_time_limit=${limit:-unknown}" \
    --metadata "sbatch_env_file=${SEMSKIP_ENV_FILE:-}" \
    --metadata "sbatch_mpi=$SEMSKIP_MPI" \
    --metadata "sbatch_cpu_bind=$SEMSKIP_CPU_BIND" \
    --metadata "sbatch_srun_args=${SEMSKIP_SRUN_ARGS:-}"
}

# srun of the semskip command "$@": one rank per task, bound to its cores.
semskip_srun() {
  local extra=()
  # shellcheck disable=SC2206
  [[ -n ${SEMSKIP_SRUN_ARGS:-} ]] && extra=($SEMSKIP_SRUN_ARGS)
  # none: no --cpu-bind at all, for clusters whose task plugin cannot bind (the local one).
  [[ $SEMSKIP_CPU_BIND == none ]] || extra=(--cpu-bind="$SEMSKIP_CPU_BIND" "${extra[@]}")
  srun --mpi="$SEMSKIP_MPI" "${extra[@]}" "$SEMSKIP_BIN" "$@"
}
