"""Meta-training throughput against the number of devices and processes; prints JSON.

Runs ``lopt-meta-train`` (``python -m meta_train.cli``) on a fixed workload, each setting in its
own subprocess:

* 1, 2, 4, 8 simulated CPU devices in one process
  (``XLA_FLAGS=--xla_force_host_platform_device_count=N``), particles sharded over the
  ``particles`` mesh axis;
* 1 vs 2 processes on 127.0.0.1 (``jax.distributed`` with gloo CPU collectives), one device each;
* all GPUs, when ``jax.devices("gpu")`` finds any.

Timing: the per-step wall times of ``metrics.jsonl`` (written before checkpoints and exports).
The first ``--warmup`` outer steps (compilation) are dropped; the next ``--repeats`` blocks of
``--steps`` outer steps each give one throughput per block; the figure is their median (min and
max are reported too).

Each setting runs in both communication modes (``--modes``; ``meta_train.communication``):
``allreduce`` (a theta-sized sum per group) and ``shared_randomness`` (perturbations regenerated on
every device, per-pair scalars all-gathered).

Communication: the collectives of each group's compiled estimator, read from its optimized HLO
on 2 simulated devices (their payload does not depend on the device count), next to theta's
size, for each mode and for the optimizer at two widths (``lstm_hidden`` 32 and 128), so that a
payload that grows with theta shows. The meta-update itself works on replicated arrays and
communicates nothing.

Crossover: ``shared_randomness`` trades the all-reduce for regenerating every pair's
perturbation and forming the whole sum on every device. Per group and outer step and device,
the all-reduce moves ``2 (D-1)/D * 4 |theta|`` bytes (ring) and shared randomness computes
``(D-1)/D * t(P, |theta|)`` more, ``t`` the measured time of drawing ``P`` perturbations and
summing them (``regeneration``). Shared randomness is faster on links slower than
``B* = 8 |theta| / t(P, |theta|)`` bytes/s; ``t`` grows like ``|theta|``, so ``B*`` hardly
depends on theta (fixed latencies, equal in both modes, are left out).

Workload: the quickstart optimizer (HyperLOpt) on ``--groups`` task groups of the ``--zoo`` zoo
(default ``small``: MNIST / Fashion-MNIST MLPs, needs ``TFDS_DATA_DIR``) of ``--pairs``
antithetic pairs (a multiple of every device count), truncation ``--truncation``, fixed groups.

    JAX_PLATFORMS=cpu python benchmarks/scaling.py [--repeats 5] [--steps 10] [--devices 1,2,4,8]

On a machine with fewer cores than simulated devices the devices share the cores, so the figures
measure the overhead of sharding and collectives, not a speedup.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import socket
import statistics
import subprocess
import sys
import tempfile

from machine_info import machine_info, run_main

REPO = pathlib.Path(__file__).resolve().parents[1]


def overrides(a) -> dict:
    """The config fields every run sets (dotted names), from the command-line arguments."""
    total = a.warmup + a.repeats * a.steps
    return {
        "zoo": a.zoo,
        "num_groups": a.groups,
        "pairs_per_group": a.pairs,
        "truncation_length": a.truncation,
        "episode.min_length": 100,
        "episode.max_length": 400,
        "group_resample_every": 0,
        "outer_steps": total,
        "checkpoint_every": total,
        "export_every": total,
        "eval.num_tasks": 0,
    }


def _cli(workdir, a, mode, *extra) -> list[str]:
    flags = [f"--config.{k}={v}" for k, v in overrides(a).items()]
    flags.append(f"--config.communication={mode}")
    return [
        sys.executable,
        "-m",
        "meta_train.cli",
        "--config=quickstart",
        f"--workdir={workdir}",
        "--noprogress",
        "--compilation_cache_dir=",
        *flags,
        *extra,
    ]


def _env(platform_name: str, devices: int | None = None) -> dict:
    env = dict(os.environ, PYTHONPATH=str(REPO), JAX_PLATFORMS=platform_name)
    env.pop("XLA_FLAGS", None)
    if devices:
        env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    return env


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(cmds, env, timeout=900) -> None:
    """Run the commands concurrently (the processes of one job); raise if any fails."""
    procs = [
        subprocess.Popen(c, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        for c in cmds
    ]
    errs = [p.communicate(timeout=timeout)[1] for p in procs]
    for p, e in zip(procs, errs, strict=True):
        if p.returncode != 0:
            raise RuntimeError(f"run failed ({p.returncode}): {e[-2000:]}")


def summarize(workdir, a) -> dict:
    """Median (min, max) throughput over the ``repeats`` blocks of ``steps`` timed outer steps."""
    text = (pathlib.Path(workdir) / "metrics.jsonl").read_text()
    rows = [r for r in map(json.loads, text.splitlines()) if "seconds" in r][a.warmup :]
    blocks = [rows[i * a.steps : (i + 1) * a.steps] for i in range(a.repeats)]
    per_s = sorted(len(b) / sum(r["seconds"] for r in b) for b in blocks)
    inner = rows[0]["inner_steps"]
    med = statistics.median(per_s)
    return dict(
        outer_steps_per_s=round(med, 2),
        inner_steps_per_s=round(med * inner, 1),
        outer_steps_per_s_min_max=[round(per_s[0], 2), round(per_s[-1], 2)],
    )


def measure(name: str, workdir, cmds, env, a, **fields) -> dict:
    """Run one setting (its processes' commands) and summarize its ``metrics.jsonl``."""
    _run(cmds, env)
    print(f"scaling: {name} done", file=sys.stderr, flush=True)
    return dict(run=name, **fields, **summarize(workdir, a))


def probe_communication(a, mode: str, lstm_hidden: int) -> dict:
    """(In a 2-device subprocess) theta's bytes and each group estimator's collective bytes."""
    import jax

    from meta_train import config as config_lib
    from meta_train import configs, outer, spec
    from meta_train.hlo import collective_bytes

    c = configs.get("quickstart")
    for k, v in overrides(a).items():
        *path, leaf = k.split(".")
        node = c
        for p in path:
            node = node[p]
        node[leaf] = v
    c.communication = mode
    c.lopt.config.lstm_hidden = lstm_hidden
    run, zoo = spec.from_config(c), config_lib.build_zoo(c)
    mesh = outer.make_mesh()
    groups = outer.groups_for_step(outer.GroupCache(run, mesh), zoo, run, 0)
    state = outer.init_state(run, groups, mesh, outer.meta_optimizer(run.meta_opt))
    per_group = []
    for g, grp in enumerate(groups):
        args = (state.theta, state.particles[g], jax.random.key(0), grp.data)
        per_group.append(collective_bytes(grp.estimate.lower(*args).compile().as_text()))
    return dict(
        mode=mode,
        lstm_hidden=lstm_hidden,
        theta_bytes=int(sum(x.nbytes for x in jax.tree.leaves(state.theta))),
        bytes_per_outer_step=sum(sum(g.values()) for g in per_group),
        per_group_collectives=per_group,
    )


def _probes(a) -> list[dict]:
    """Every (mode, width) probe, all in one 2-device subprocess."""
    out = subprocess.run(
        [sys.executable, __file__, "--_probe", *sys.argv[1:]],
        env=_env("cpu", 2),
        capture_output=True,
        text=True,
        timeout=900,
    )
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-2000:])
    return json.loads(out.stdout.splitlines()[-1])


def regeneration(pairs: int, sizes=(10_000, 100_000, 1_000_000), repeats: int = 5) -> list[dict]:
    """Median seconds ``t`` to draw ``pairs`` Gaussian perturbations of ``n`` meta-parameters
    and form their weighted sum (the work shared randomness adds per device), and the link
    speed ``B* = 8 n / t`` below which it beats the all-reduce."""
    import time

    import jax
    import jax.numpy as jnp

    from meta_train import cpu_rng

    cpu_rng.use_unrolled_threefry()  # as lopt-meta-train compiles

    @jax.jit
    def regenerate(keys, weights, theta):
        eps = jax.vmap(lambda k: 0.01 * jax.random.normal(k, theta.shape))(keys)
        return jnp.tensordot(weights, eps, axes=1)

    out = []
    for n in sizes:
        keys = jax.random.split(jax.random.PRNGKey(0), pairs)
        args = (keys, jnp.ones((pairs,)), jnp.zeros((n,)))
        regenerate(*args).block_until_ready()
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            regenerate(*args).block_until_ready()
            times.append(time.perf_counter() - t0)
        t = statistics.median(times)
        out.append(
            dict(theta_size=n, pairs=pairs, seconds=t, crossover_link_gbytes_per_s=8 * n / t / 1e9)
        )
    return out


def communication(a) -> dict:
    return dict(
        groups=a.groups,
        probes=_probes(a),
        note=(
            "payload of the collectives in each group's compiled estimator, summed over groups "
            "(allreduce: one theta-sized sum per group, PES adds its two terms per pair before "
            "reducing; shared_randomness: an all-gather of 16 bytes per pair; both: a few metric "
            "scalars); a ring all-reduce moves about 2(N-1)/N times the payload per device"
        ),
        regeneration_on_cpu=regeneration(a.pairs),
    )


def gpus() -> tuple[int, str | None]:
    """(number, kind) of the GPUs jax sees in a fresh process; (0, None) without any."""
    code = "import jax; d = jax.devices('gpu'); print(len(d), d[0].device_kind)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=_env(""), timeout=300
    )
    if out.returncode != 0 or not out.stdout.strip():
        return 0, None
    n, kind = out.stdout.strip().splitlines()[-1].split(" ", 1)
    return int(n), kind


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--devices", default="1,2,4,8", help="simulated CPU device counts")
    ap.add_argument("--repeats", type=int, default=5, help="timed blocks per run")
    ap.add_argument("--steps", type=int, default=10, help="outer steps per timed block")
    ap.add_argument("--warmup", type=int, default=5, help="outer steps dropped (compilation)")
    ap.add_argument("--groups", type=int, default=2)
    ap.add_argument("--pairs", type=int, default=8, help="pairs per group")
    ap.add_argument("--truncation", type=int, default=50)
    ap.add_argument("--zoo", default="small", help="task zoo (small needs prepared MNIST)")
    ap.add_argument("--no_processes", action="store_true", help="skip the 1 vs 2 process runs")
    ap.add_argument("--modes", default="allreduce,shared_randomness", help="communication modes")
    ap.add_argument("--_probe", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    modes = a.modes.split(",")
    if a._probe:
        print(json.dumps([probe_communication(a, m, h) for m in modes for h in (32, 128)]))
        return
    results = []
    n_gpu, gpu_kind = gpus()
    with tempfile.TemporaryDirectory() as tmp:
        for mode in modes:
            for n in [int(x) for x in a.devices.split(",")]:
                wd = pathlib.Path(tmp) / f"{mode}_dev{n}"
                env, cmd = _env("cpu", n), [_cli(wd, a, mode)]
                results.append(measure(f"{n} cpu devices", wd, cmd, env, a, devices=n, mode=mode))
            for nproc in () if a.no_processes else (1, 2):
                dist = [
                    f"--coordinator_address=127.0.0.1:{_port()}",
                    f"--num_processes={nproc}",
                    "--cpu_collectives=gloo",
                ]
                wd = pathlib.Path(tmp) / f"{mode}_proc{nproc}"
                cmds = [_cli(wd, a, mode, *dist, f"--process_id={i}") for i in range(nproc)]
                name = f"{nproc} process(es) x 1 cpu device, gloo"
                results.append(measure(name, wd, cmds, _env("cpu"), a, devices=nproc, mode=mode))
            if n_gpu and a.pairs % n_gpu == 0:
                wd = pathlib.Path(tmp) / f"{mode}_gpu"
                name, cmd = f"{n_gpu} gpu(s)", [_cli(wd, a, mode)]
                results.append(measure(name, wd, cmd, _env("cuda"), a, devices=n_gpu, mode=mode))
    print(
        json.dumps(
            dict(
                benchmark="scaling",
                results=results,
                communication_per_outer_step=communication(a),
                config=dict(
                    config="quickstart",
                    **overrides(a),
                    warmup_steps=a.warmup,
                    repeats=a.repeats,
                    steps_per_repeat=a.steps,
                    inner_steps_per_outer_step=2 * a.groups * a.pairs * a.truncation,
                ),
                machine=machine_info("cpu", gpu=gpu_kind),
            ),
            indent=1,
        )
    )


if __name__ == "__main__":
    run_main(main)
