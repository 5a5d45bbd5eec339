#!/usr/bin/env bash
# Launches a kiln command on N ranks with Open MPI: one rank per GPU on GPU machines, one rank
# per CPU socket otherwise (each rank then runs OpenMP threads over its socket's cores).
#
#   scripts/launch/mpirun.sh -n 8 [--hosts node1:4,node2:4] -- kiln train recipes/llama-small.yaml --set parallel.tp=2
#
# Ranks are placed in order, so consecutive ranks (kiln's tensor-parallel groups: tp varies
# fastest) share a node. Extra mpirun options go in KILN_MPIRUN_ARGS.
set -euo pipefail
ranks=""
hosts=""
while [[ $# -gt 0 ]]; do
  case $1 in
    -n|--ranks) ranks=$2; shift 2 ;;
    --hosts) hosts=$2; shift 2 ;;
    --) shift; break ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "mpirun.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
done
[[ -n $ranks && $# -gt 0 ]] || { echo "usage: mpirun.sh -n RANKS [--hosts H:N,...] -- kiln VERB ..." >&2; exit 2; }
root=$(cd "$(dirname "$0")/../.." && pwd)
if [[ $1 == kiln ]]; then shift; set -- "${KILN_BINARY:-$root/build/trainer/cli/kiln}" "$@"; fi

args=(-np "$ranks")
[[ -n $hosts ]] && args+=(--host "$hosts")
gpus=$(command -v nvidia-smi >/dev/null && nvidia-smi -L 2>/dev/null | wc -l || echo 0)
if [[ $gpus -gt 0 ]]; then
  # One rank per GPU; kiln picks its device from the node-local rank.
  args+=(--map-by "ppr:$gpus:node" --bind-to none)
  threads=$(( $(nproc) / gpus ))
else
  sockets=$(lscpu -p=SOCKET 2>/dev/null | grep -v '^#' | sort -u | wc -l)
  sockets=$(( sockets > 0 ? sockets : 1 ))
  per_node=$(( ranks < sockets ? ranks : sockets ))
  if [[ $ranks -le $sockets ]]; then
    args+=(--map-by socket --bind-to socket)
  else
    args+=(--oversubscribe --bind-to none)  # more ranks than sockets: a test or a small machine
  fi
  threads=$(( $(nproc) / (per_node > 0 ? per_node : 1) ))
  (( ranks > sockets )) && threads=1
fi
[[ $(id -u) -eq 0 ]] && args+=(--allow-run-as-root)
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-$threads}
echo "mpirun ${args[*]} -x OMP_NUM_THREADS=$OMP_NUM_THREADS $*" >&2
# shellcheck disable=SC2086
exec mpirun "${args[@]}" -x OMP_NUM_THREADS -x PATH -x LD_LIBRARY_PATH ${KILN_MPIRUN_ARGS:-} "$@"
