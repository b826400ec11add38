#!/usr/bin/env bash
# Run lopt-eval over a list of tasks split into NPROC processes that share one machine (e.g. one
# GPU: each process gets 0.9/NPROC of its memory), then merge the shards' records.
#
#   benchmarks/run_suite_sharded.sh WORKDIR NPROC OPTIMIZERS TASK1,TASK2,... [lopt-eval flags]
#
# Shard i evaluates tasks i, i+NPROC, ... into WORKDIR/shard_i (its log: WORKDIR/shard_i.log);
# all records end up in WORKDIR/results.jsonl, from which `lopt-eval --report_only
# --workdir=WORKDIR ...` builds the table. Compilation runs on the host CPUs, so on a many-core
# host the shards compile in parallel. Re-running resumes (records are keyed by content).
set -u
workdir=$1 nproc=$2 optimizers=$3 task_list=$4
shift 4
IFS=, read -ra tasks <<< "$task_list"
export XLA_PYTHON_CLIENT_MEM_FRACTION=${XLA_PYTHON_CLIENT_MEM_FRACTION:-$(python3 -c "print(round(0.9 / $nproc, 3))")}
mkdir -p "$workdir"
for ((i = 0; i < nproc; i++)); do
  mine=()
  for ((j = i; j < ${#tasks[@]}; j += nproc)); do mine+=("${tasks[j]}"); done
  [ ${#mine[@]} -eq 0 ] && continue
  joined=$(IFS=,; echo "${mine[*]}")
  python3 -m eval.cli --suite="${SUITE:-heldout}" --tasks="$joined" --optimizers="$optimizers" \
    --workdir="$workdir/shard_$i" "$@" > "$workdir/shard_$i.log" 2>&1 &
done
wait
cat "$workdir"/shard_*/results.jsonl > "$workdir/results.jsonl" 2>/dev/null
echo "merged $(wc -l < "$workdir/results.jsonl") records into $workdir/results.jsonl"
