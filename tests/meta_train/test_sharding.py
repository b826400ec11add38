"""The same seeds give the same meta-gradients and theta on 1 and on 4 (simulated) devices."""

import os
import pathlib
import subprocess
import sys
import textwrap

REPO = pathlib.Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent(
    """
    import sys, jax, numpy as np
    from meta_train import configs, outer, train
    from meta_train import config as config_lib
    assert len(jax.devices()) == 4, jax.devices()
    c = configs.get("quickstart")
    c.num_groups, c.pairs_per_group, c.truncation_length = 1, 4, 10
    c.episode.min_length, c.episode.max_length = 20, 60
    c.group_resample_every, c.outer_steps = 0, 6
    c.checkpoint_every = c.export_every = 6
    c.eval.num_tasks = 0
    out = {}
    for n in (1, 4):
        mesh = outer.make_mesh(jax.devices()[:n])
        state = train.train(c, f"{sys.argv[1]}/d{n}", progress=False, mesh=mesh)
        shard = state.particles[0].step.sharding
        assert len(shard.device_set) == n, shard
        out[n] = np.asarray(jax.flatten_util.ravel_pytree(state.theta)[0])
    diff = float(np.max(np.abs(out[1] - out[4])))
    moved = float(np.max(np.abs(out[1] - np.asarray(
        jax.flatten_util.ravel_pytree(outer.initial_theta(c, config_lib.build_lopt(c)))[0]))))
    print("RESULT", diff, moved)
    """
)


def test_one_vs_four_devices(tmp_path):
    env = dict(
        os.environ,
        JAX_PLATFORMS="cpu",
        PYTHONPATH=str(REPO),
        XLA_FLAGS="--xla_force_host_platform_device_count=4",
    )
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    line = [x for x in out.stdout.splitlines() if x.startswith("RESULT")][-1]
    diff, moved = map(float, line.split()[1:])
    assert moved > 1e-3  # theta did change over the run ...
    assert diff < 1e-5, diff  # ... identically on 1 and on 4 devices


def _cli(workdir, *extra):
    return [
        sys.executable,
        "-m",
        "meta_train.cli",
        "--config=quickstart",
        f"--workdir={workdir}",
        "--noprogress",
        "--compilation_cache_dir=",
        "--config.num_groups=1",
        "--config.pairs_per_group=4",
        "--config.truncation_length=10",
        "--config.episode.min_length=20",
        "--config.episode.max_length=60",
        "--config.group_resample_every=0",
        "--config.outer_steps=6",
        "--config.checkpoint_every=3",
        "--config.eval.num_tasks=0",
        *extra,
    ]


def _theta(workdir):
    import jax
    import numpy as np

    import learned_opt

    _, theta = learned_opt.load_meta_params(str(workdir / "export"))
    return np.asarray(jax.flatten_util.ravel_pytree(theta)[0])


def test_two_processes_match_one(tmp_path):
    """jax.distributed on 127.0.0.1 with gloo CPU collectives: 2 processes x 1 device."""
    import socket

    import numpy as np

    env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=str(REPO))
    env.pop("XLA_FLAGS", None)
    one = subprocess.run(_cli(tmp_path / "one"), env=env, capture_output=True, timeout=600)
    assert one.returncode == 0, one.stderr[-3000:]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    dist = [
        f"--coordinator_address=127.0.0.1:{port}",
        "--num_processes=2",
        "--cpu_collectives=gloo",
    ]
    procs = [
        subprocess.Popen(
            _cli(tmp_path / "two", *dist, f"--process_id={i}"),
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for i in range(2)
    ]
    errs = [p.communicate(timeout=600)[1].decode() for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [e[-2000:] for e in errs]
    np.testing.assert_allclose(_theta(tmp_path / "two"), _theta(tmp_path / "one"), atol=1e-5)
    assert sorted(p.name for p in (tmp_path / "two" / "checkpoints").iterdir()) == ["3", "6"]
