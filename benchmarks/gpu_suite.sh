#!/usr/bin/env bash
# One short GPU check (about 3 minutes on an H100, compilation included): the steady-state
# meta-training throughput of the reference config and the scaling benchmark on the GPU, each
# as JSON in $OUT (default ./gpu_suite_out). Every part has its own timeout and a failing part
# does not stop the others; $OUT/status.txt says how each ended.
#
#     OUT=/some/dir bash benchmarks/gpu_suite.sh
#
# The reference task needs prepared MNIST (TFDS_DATA_DIR); without it the throughput part runs
# the embedded MNIST-1D MLP of the same family instead (mlp_mnist1d_w32, 1,642 parameters) and
# says so in its JSON (config.task). The scaling part uses the embedded quickstart zoo.
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
ls -l "$OUT" >>"$OUT/status.txt"
