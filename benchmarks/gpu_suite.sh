#!/usr/bin/env bash
# One GPU check that fits a 10-minute window on one H100 (the parts' timeouts sum to 9.3 minutes),
# each part's output in $OUT (default ./gpu_suite_out):
#   throughput_p8 / _p64  steady-state meta-training throughput of the reference config;
#   recipe                the recommended optimizer's recipe over its zoo: a first run with a
#                         cold compilation cache, its split, and its floor (--config recipe);
#   scaling               the outer loop end to end, 1 CPU device against the GPU;
#   convlm/               one char transformer of the held-out suite under the full protocol
#                         (3 seeds, the 9-rate grid), the recommended optimizer beside its
#                         initial rule, tuned AdamW + cosine and tuned Adam.
# Every part has its own timeout and a failing part does not stop the others; $OUT/status.txt
# says how each ended.
#
#     OUT=/some/dir TFDS_DATA_DIR=/path/to/tfds bash benchmarks/gpu_suite.sh
#
# The reference task needs prepared MNIST and the evaluation tiny_shakespeare (TFDS_DATA_DIR; a
# device machine that only gets the repository needs a copy of those two datasets carried
# along). Without MNIST the throughput part runs the embedded MNIST-1D MLP of the same family
# (mlp_mnist1d_w32, 1,642 parameters) and says so in its JSON (config.task); the scaling part
# uses the embedded quickstart zoo.
set -u
cd "$(dirname "$0")/.."
OUT="${OUT:-$PWD/gpu_suite_out}"
mkdir -p "$OUT"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export XLA_PYTHON_CLIENT_PREALLOCATE=false
unset JAX_PLATFORMS
status() { echo "$1 rc=$2 $(date -u +%H:%M:%S)" | tee -a "$OUT/status.txt"; }

run() {  # run NAME SECONDS CMD...: stdout -> $OUT/NAME.json, stderr -> $OUT/NAME.log
  local name=$1 secs=$2
  shift 2
  timeout -k 10 "$secs" "$@" >"$OUT/$name.json" 2>"$OUT/$name.log"
  status "$name" $?
}

{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1
  python -c "import jax; print(jax.__version__, jax.devices())" 2>&1; } >"$OUT/device.txt"
status device 0

TASK=mlp_mnist8_w32
python -c "import tasks; tasks.get('$TASK').load_data()" >/dev/null 2>&1 || TASK=mlp_mnist1d_w32
echo "throughput task: $TASK" >>"$OUT/status.txt"

# steady state of the reference config (8 pairs), then a population that fills a GPU better
run throughput_p8 75 python benchmarks/meta_train_throughput.py --task "$TASK" --repeats 5 --calls 5
run throughput_p64 60 python benchmarks/meta_train_throughput.py --task "$TASK" --pairs 64 \
  --repeats 3 --calls 3
# the outer loop end to end (2 groups x 8 pairs, quickstart zoo): 1 CPU device vs the GPU
run scaling 90 python benchmarks/scaling.py --zoo quickstart --devices 1 --no_processes \
  --warmup 3 --repeats 3 --steps 5
# the shipped recipe: a 100-step first run (cold cache), then its floor
run recipe 150 python benchmarks/meta_train_throughput.py --config recipe --outer_steps 100 \
  --repeats 3
# one char transformer, full protocol (results.jsonl resumes a rerun)
timeout -k 10 180 python -m eval.cli --suite=heldout --tasks=lm_shakespeare_s32_w48_d3 \
  --optimizers=adamw_cos,adam,muon_rel_mup@0.02,scale_free_v7 --seeds=3 \
  --workdir="$OUT/convlm" --noprogress >"$OUT/convlm.log" 2>&1
status convlm $?
ls -l "$OUT" >>"$OUT/status.txt"
