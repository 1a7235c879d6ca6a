# The parameter grid of slurm/sweep.sbatch (grid.example says the format); sourced, never run.
# semskip_grid_load FILE fills grid_model, grid_index, grid_layers, grid_tau (arrays) and
# grid_shards, grid_points, grid_tasks; semskip_grid_point TASK sets point_* for one task.

semskip_grid_load() {
  local file=$1 key rest line n=0
  [[ -r $file ]] || { echo "grid '$file': not a readable file" >&2; return 2; }
  grid_model=() grid_index=() grid_layers=() grid_tau=() grid_shards=1
  while IFS= read -r line || [[ -n $line ]]; do
    n=$((n + 1))
    line=${line%%#*}
    read -r key rest <<<"$line" || true
    [[ -z ${key:-} ]] && continue
    [[ -n ${rest:-} ]] || { echo "grid '$file' line $n: '$key' has no values" >&2; return 2; }
    case $key in
      model) read -r -a grid_model <<<"$rest" ;;
      index) read -r -a grid_index <<<"$rest" ;;
      layers) read -r -a grid_layers <<<"$rest" ;;
      tau) read -r -a grid_tau <<<"$rest" ;;
      shards) grid_shards=$rest ;;
      *) echo "grid '$file' line $n: unknown parameter '$key' (model, index, layers, tau, shards)" >&2; return 2 ;;
    esac
  done <"$file"
  local k
  for k in model index layers tau; do
    local -n arr="grid_$k"
    ((${#arr[@]} > 0)) || { echo "grid '$file': no line for '$k'" >&2; return 2; }
  done
  local l
  for l in "${grid_layers[@]}"; do
    [[ $l =~ ^[0-9]+:[0-9]+$ ]] || { echo "grid '$file': layers '$l' is not probe:resume (e.g. 2:7)" >&2; return 2; }
  done
  [[ $grid_shards =~ ^[1-9][0-9]*$ ]] || { echo "grid '$file': shards '$grid_shards' is not a positive integer" >&2; return 2; }
  grid_points=$((${#grid_model[@]} * ${#grid_index[@]} * ${#grid_layers[@]} * ${#grid_tau[@]}))
  grid_tasks=$((grid_points * grid_shards))
}

semskip_grid_point() {
  local task=$1 p
  [[ $task =~ ^[0-9]+$ ]] && ((task < grid_tasks)) || { echo "task $task is outside the grid's 0..$((grid_tasks - 1))" >&2; return 2; }
  p=$((task / grid_shards))
  point_shard=$((task % grid_shards))
  point_tau=${grid_tau[p % ${#grid_tau[@]}]}; p=$((p / ${#grid_tau[@]}))
  point_layers=${grid_layers[p % ${#grid_layers[@]}]}; p=$((p / ${#grid_layers[@]}))
  point_index=${grid_index[p % ${#grid_index[@]}]}; p=$((p / ${#grid_index[@]}))
  point_model=${grid_model[p]}
  point_policy="residual:p=${point_layers%%:*},r=${point_layers##*:},tau=$point_tau"
}
