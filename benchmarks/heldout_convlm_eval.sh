#!/usr/bin/env bash
# The 6 conv-net and character-transformer tasks of the `heldout` suite under the full protocol
# (3 seeds, the default 9-rate grid 1e-4..1.0, each task's default steps), for an accelerator.
#
#   OUT=/path/to/workdir benchmarks/heldout_convlm_eval.sh [EXTRA_CANDIDATE ...]
#
# EXTRA_CANDIDATE: more optimizers, e.g. `sf=/path/to/saved_lopt` (LABEL=PATH) or a shipped name.
# Runs one task at a time and rebuilds the report after each, so a timeout keeps every finished
# task (and every finished program: results.jsonl is appended per program, keyed by content; the
# same command resumes, and a candidate added later runs alone). Needs prepared tfds data
# (TFDS_DATA_DIR, default ../shared/data/tfds beside the repository).
set -euo pipefail
: "${OUT:?set OUT to the output directory}"
cd "$(dirname "$0")/.."
export TFDS_DATA_DIR="${TFDS_DATA_DIR:-$(cd .. && pwd)/shared/data/tfds}"
# CONVLM_TASKS / EXTRA_FLAGS (e.g. "--steps=20 --seeds=1") for a smoke test of this script, or for
# the reduced CPU protocol of the README (EXTRA_FLAGS="--seeds=1 --lrs=..." and OPTS=...)
read -r -a TASKS <<< "${CONVLM_TASKS:-conv_mnist28_c16-32 conv_fmnist16_c32-64 conv_fmnist28_c8-16-32 \
lm_shakespeare_s64_w96_d2 lm_shakespeare_s32_w48_d3 lm_shakespeare_s64_w128_d2_mup}"
OPTS="${OPTS:-adamw_cos,adam,nadamw_cos,lion_cos,muon,muon@0.02,adam@1e-3,hyper_small_v2}"
for extra in "$@"; do OPTS="$OPTS,$extra"; done
mkdir -p "$OUT"
python -c 'import jax; print("devices:", jax.devices())' | tee -a "$OUT/progress.log"
start=$(date +%s)
i=0
for task in "${TASKS[@]}"; do
  i=$((i + 1))
  echo "[$(date -u +%H:%M:%S)] task $i/${#TASKS[@]}: $task ($(( $(date +%s) - start )) s so far)" \
    | tee -a "$OUT/progress.log"
  # a log line per finished program; the summary tables printed at the end are left out
  python -m eval.cli --suite=heldout --tasks="$task" --optimizers="$OPTS" --seeds=3 \
    --workdir="$OUT" --noprogress ${EXTRA_FLAGS:-} 2>&1 | grep --line-buffered -v "^|" | tee -a "$OUT/progress.log" \
    || echo "task $task failed (see above); going on" | tee -a "$OUT/progress.log"
  # the report of every task finished so far
  python -m eval.cli --workdir="$OUT" --report_only > /dev/null || true
done
echo "[$(date -u +%H:%M:%S)] done in $(( $(date +%s) - start )) s: $OUT/summary.md" \
  | tee -a "$OUT/progress.log"
