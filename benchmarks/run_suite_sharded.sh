#!/usr/bin/env bash
# Run lopt-eval over a list of tasks split into NPROC processes that share one machine (e.g. one
# GPU: each process gets 0.9/NPROC of its memory), then merge the shards' records.
#
#   benchmarks/run_suite_sharded.sh WORKDIR NPROC OPTIMIZERS TASK1,TASK2,... [lopt-eval flags]
#
# Shard i evaluates tasks i, i+NPROC, ... into WORKDIR/shard_i (its log: WORKDIR/shard_i.log);
# each shard starts from WORKDIR/results.jsonl's records (reused, not re-run), and all records
# end up in WORKDIR/results.jsonl (its own kept, the shards' new ones added once), from which
# `lopt-eval --report_only --workdir=WORKDIR ...` builds the table. Compilation runs on the host CPUs, so on a many-core
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
  # each shard starts from the workdir's records, so runs already there are reused, not redone
  mkdir -p "$workdir/shard_$i"
  if [ -f "$workdir/results.jsonl" ] && [ ! -f "$workdir/shard_$i/results.jsonl" ]; then
    cp "$workdir/results.jsonl" "$workdir/shard_$i/results.jsonl"
  fi
  python3 -m eval.cli --suite="${SUITE:-heldout}" --tasks="$joined" --optimizers="$optimizers" \
    --workdir="$workdir/shard_$i" "$@" > "$workdir/shard_$i.log" 2>&1 &
done
wait
# merge: the workdir's own records, then each shard's new ones; identical lines kept once
cat "$workdir/results.jsonl" "$workdir"/shard_*/results.jsonl 2>/dev/null | awk '!seen[$0]++' \
  > "$workdir/results.jsonl.tmp" && mv "$workdir/results.jsonl.tmp" "$workdir/results.jsonl"
echo "merged $(wc -l < "$workdir/results.jsonl") records into $workdir/results.jsonl"
