"""Small meta-training runs whose results a refactor must leave bit-identical.

Each run of :data:`RUNS` is a few outer steps of ``train.train`` on the embedded zoo with one
estimator and the settings that reach it (late weights, log loss, balanced groups, shared
randomness, shared programs, group draws). :func:`values` returns what the run produced: the
final theta (its float32 bytes as hex and its first values) and each step's deterministic
metrics. ``spec_values.json`` holds the values recorded by an earlier version of the code, compiled
as the tests compile (``cli.set_cpu_compilation``), and the CPU they were recorded on
(:func:`cpu_signature`: XLA:CPU compiles for the host's instruction set, so another CPU rounds
differently):

    JAX_PLATFORMS=cpu python tests/meta_train/spec_runs.py tests/meta_train/spec_values.json

The configs are written out here in full (from ``config.base()``), not read from the named recipes,
so that a change of a recipe file does not change them.
"""

from __future__ import annotations

import hashlib
import json
import pathlib
import sys
import tempfile

import jax
import jax.flatten_util
import numpy as np

METRICS = ("loss", "grad_norm", "num_nonfinite", "num_episodes_ended", "update_skipped")


def _base(**fields):
    from meta_train import config as config_lib

    c = config_lib.base()
    c.zoo = "quickstart"
    c.lopt.architecture = "hyper"
    c.truncation_length = 10
    c.episode.min_length, c.episode.max_length = 20, 60
    c.num_groups, c.pairs_per_group = 2, 2
    c.group_resample_every = 2
    c.outer_steps, c.checkpoint_every, c.export_every = 4, 2, 2
    for k, v in fields.items():
        node = c
        *parents, last = k.split(".")
        for p in parents:
            node = node[p]
        node[last] = v
    return c


RUNS = {
    "pes_late_log_balanced": dict(late_weight=1.0, log_loss=True, balance_groups=True),
    "nres_shared_programs_int8": dict(
        estimator="nres",
        share_programs=True,
        communication="shared_randomness",
        exchange_quantization="int8",
        sigma=0.02,
    ),
    "full_es_constant": {
        "estimator": "full_es",
        "num_groups": 1,
        "episode.kind": "constant",
        "episode.min_length": 20,
        "episode.max_length": 20,
        "loss_clip": 3.0,
    },
    "tbptt": {"estimator": "tbptt", "num_groups": 1, "meta_opt.clip_norm": 0.0},
}


def cpu_signature() -> str:
    """The host CPU as XLA:CPU targets it (``learned_opt.cpu_kernel.cpu_signature``: the machine
    and its instruction-set flags), hashed (sha256, 12 hex digits)."""
    from learned_opt import cpu_kernel

    return hashlib.sha256(cpu_kernel.cpu_signature().encode()).hexdigest()[:12]


def config(name: str):
    """The ConfigDict of run ``name`` of :data:`RUNS`."""
    return _base(**RUNS[name])


def values(name: str, workdir) -> dict:
    """Run ``name`` in ``workdir`` and return its final theta and per-step metrics."""
    import learned_opt
    from meta_train import train

    train.train(config(name), workdir, progress=False)
    _, theta = learned_opt.load_meta_params(str(pathlib.Path(workdir) / "export"))
    flat = np.asarray(jax.flatten_util.ravel_pytree(theta)[0], np.float32)
    lines = (pathlib.Path(workdir) / "metrics.jsonl").read_text().splitlines()
    rows = [json.loads(x) for x in lines]
    return dict(
        theta_sha256=hashlib.sha256(flat.tobytes()).hexdigest(),
        theta_size=int(flat.size),
        theta_head=[float(x) for x in flat[:8]],
        metrics=[{k: r[k] for k in ("step", *METRICS)} for r in rows],
    )


def main(out: str) -> None:
    from meta_train.cli import CPU_OPTIMIZATION_LEVEL, set_cpu_compilation

    set_cpu_compilation(CPU_OPTIMIZATION_LEVEL)  # as the tests (tests/conftest.py) compile
    command = "JAX_PLATFORMS=cpu python tests/meta_train/spec_runs.py " + out
    recorded = dict(_command=command, _jax=jax.__version__, _cpu=cpu_signature())
    for name in RUNS:
        with tempfile.TemporaryDirectory() as d:
            recorded[name] = values(name, d)
            print(name, recorded[name]["theta_sha256"], flush=True)
    pathlib.Path(out).write_text(json.dumps(recorded, indent=1) + "\n")


if __name__ == "__main__":
    main(sys.argv[1])
