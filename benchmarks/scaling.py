"""Meta-training throughput against the number of devices and processes; prints JSON.

Runs ``lopt-meta-train`` (``python -m meta_train.cli``) on a fixed workload and reads the
per-step wall time from its ``metrics.jsonl`` (median over the steps after ``--warmup``):

* 1, 2, 4, 8 simulated CPU devices in one process
  (``XLA_FLAGS=--xla_force_host_platform_device_count=N``), particles sharded over a
  ``particles`` mesh axis;
* 1 vs 2 processes on 127.0.0.1 (``jax.distributed`` with gloo CPU collectives), one device each;
* the real GPU(s) when ``jax.devices("gpu")`` finds any.

Workload: the quickstart optimizer (HyperLOpt) on ``--groups`` task groups of the ``--zoo`` zoo
(default ``small``: MNIST / Fashion-MNIST MLPs, needs ``TFDS_DATA_DIR``) of ``--pairs`` antithetic
pairs, truncation ``--truncation``, no task resampling. Also reported: the bytes an
outer step communicates (one all-reduce of a theta-sized gradient per group, plus 3 metric
scalars per group); everything else stays on its device.

    JAX_PLATFORMS=cpu python benchmarks/scaling.py [--steps 30] [--devices 1,2,4,8]

On a 2-core machine the simulated devices share the same two cores, so the figure measures the
overhead of sharding and collectives, not a speedup.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import socket
import statistics
import subprocess
import sys
import tempfile

REPO = pathlib.Path(__file__).resolve().parents[1]


def _cli_args(workdir, a) -> list[str]:
    return [
        sys.executable,
        "-m",
        "meta_train.cli",
        "--config=quickstart",
        f"--config.zoo={a.zoo}",
        f"--workdir={workdir}",
        "--noprogress",
        "--compilation_cache_dir=",
        f"--config.num_groups={a.groups}",
        f"--config.pairs_per_group={a.pairs}",
        f"--config.truncation_length={a.truncation}",
        "--config.episode.min_length=100",
        "--config.episode.max_length=400",
        "--config.group_resample_every=0",
        f"--config.outer_steps={a.steps}",
        f"--config.checkpoint_every={a.steps}",
        f"--config.export_every={a.steps}",
        "--config.eval.num_tasks=0",
    ]


def _summary(workdir, warmup: int) -> dict:
    text = (pathlib.Path(workdir) / "metrics.jsonl").read_text()
    rows = [json.loads(x) for x in text.splitlines()]
    rows = [r for r in rows if "seconds" in r][warmup:]
    sec = statistics.median(r["seconds"] for r in rows)
    inner = rows[0]["inner_steps"]
    return dict(
        outer_steps_per_s=round(1.0 / sec, 2),
        inner_steps_per_s=round(inner / sec, 1),
        median_step_s=round(sec, 4),
        steps_timed=len(rows),
    )


def _run(cmds, env, timeout=900) -> None:
    procs = [
        subprocess.Popen(c, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        for c in cmds
    ]
    errs = [p.communicate(timeout=timeout)[1] for p in procs]
    for p, e in zip(procs, errs, strict=True):
        if p.returncode != 0:
            raise RuntimeError(f"run failed ({p.returncode}): {e[-2000:]}")


def _env(platform_name: str, devices: int | None) -> dict:
    env = dict(os.environ, PYTHONPATH=str(REPO), JAX_PLATFORMS=platform_name)
    env.pop("XLA_FLAGS", None)
    if devices:
        env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    return env


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def theta_bytes() -> int:
    import jax

    from meta_train import config as config_lib
    from meta_train import configs

    lopt = config_lib.build_lopt(configs.get("quickstart"))
    shapes = jax.eval_shape(lopt.init_meta_params, jax.random.key(0))
    return int(sum(x.size * x.dtype.itemsize for x in jax.tree.leaves(shapes)))


def _has_gpu() -> bool:
    out = subprocess.run(
        [sys.executable, "-c", "import jax; print(len(jax.devices('gpu')))"],
        capture_output=True,
        text=True,
        env=dict(os.environ, JAX_PLATFORMS=""),
    )
    return out.returncode == 0 and out.stdout.strip() not in ("", "0")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--devices", default="1,2,4,8")
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--groups", type=int, default=2)
    ap.add_argument("--pairs", type=int, default=8)
    ap.add_argument("--truncation", type=int, default=50)
    ap.add_argument("--zoo", default="small", help="task zoo (small needs prepared MNIST)")
    ap.add_argument("--no_processes", action="store_true", help="skip the 2-process run")
    a = ap.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in [int(x) for x in a.devices.split(",")]:
            wd = pathlib.Path(tmp) / f"dev{n}"
            _run([_cli_args(wd, a)], _env("cpu", n))
            row = dict(kind="cpu_devices", devices=n, processes=1, **_summary(wd, a.warmup))
            results.append(row)
        if not a.no_processes:
            for nproc in (1, 2):
                wd = pathlib.Path(tmp) / f"proc{nproc}"
                dist = []
                if nproc > 1:
                    dist = [
                        f"--coordinator_address=127.0.0.1:{_port()}",
                        f"--num_processes={nproc}",
                        "--cpu_collectives=gloo",
                    ]
                cmds = [
                    _cli_args(wd, a) + dist + ([f"--process_id={i}"] if nproc > 1 else [])
                    for i in range(nproc)
                ]
                _run(cmds, _env("cpu", None))
                results.append(
                    dict(kind="processes", devices=nproc, processes=nproc, **_summary(wd, a.warmup))
                )
        if _has_gpu():
            wd = pathlib.Path(tmp) / "gpu"
            _run([_cli_args(wd, a)], _env("cuda", None))
            results.append(dict(kind="gpu", devices=1, processes=1, **_summary(wd, a.warmup)))
    tb = theta_bytes()
    import jax

    print(
        json.dumps(
            dict(
                benchmark="scaling",
                results=results,
                bytes_communicated_per_outer_step=dict(
                    all_reduce_bytes=tb * a.groups + 3 * 4 * a.groups,
                    theta_bytes=tb,
                    note="one all-reduce of a theta-sized gradient per group + 3 f32 metrics",
                ),
                config=dict(
                    config="quickstart",
                    zoo=a.zoo,
                    groups=a.groups,
                    pairs_per_group=a.pairs,
                    truncation=a.truncation,
                    outer_steps=a.steps,
                    warmup_steps_excluded=a.warmup,
                    inner_steps_per_outer_step=2 * a.groups * a.pairs * a.truncation,
                ),
                machine=dict(
                    platform=platform.platform(),
                    cpu_count=os.cpu_count(),
                    python=platform.python_version(),
                    jax=jax.__version__,
                ),
            ),
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
