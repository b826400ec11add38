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
