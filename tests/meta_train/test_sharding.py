"""Distributed meta-training: the same seeds give the same theta on 1 and 4 (simulated) devices
and on 2 processes; checkpoints resume on another device or process count; a population that
does not divide is refused; a killed process stops its peer cleanly and both resume; the optional
fused CPU kernel runs only in programs of one device (XLA's version in partitioned ones)."""

import json
import os
import pathlib
import shutil
import subprocess
import sys
import textwrap

import pytest
from mt_toys import subprocess_env as _env

REPO = pathlib.Path(__file__).resolve().parents[2]
TOL_STEPS = 6  # tolerance 1e-5 per outer step: 1% of one meta-step of size lr = 1e-3

SCRIPT = textwrap.dedent(
    r"""
    import sys, jax, numpy as np
    from meta_train import configs, outer, spec, train
    from meta_train import config as config_lib
    assert len(jax.devices()) == 4, jax.devices()
    from mt_toys import tiny_config
    c = tiny_config(outer_steps=6, checkpoint_every=6, export_every=6)
    out = {}
    for n in (1, 4):
        mesh = outer.make_mesh(jax.devices()[:n])
        state = train.train(c, f"{sys.argv[1]}/d{n}", progress=False, mesh=mesh)
        shard = state.particles[0].step.sharding
        assert len(shard.device_set) == n, shard
        out[n] = np.asarray(jax.flatten_util.ravel_pytree(state.theta)[0])
    # shared randomness (meta_train.communication) on 4 devices: perturbations on every device,
    # the rest split over them
    s = tiny_config(outer_steps=6, checkpoint_every=6, export_every=6,
                    communication="shared_randomness")
    state = train.train(s, f"{sys.argv[1]}/s4", progress=False,
                        mesh=outer.make_mesh(jax.devices()[:4]))
    xi = jax.tree.leaves(state.particles[0].xi)[0]
    assert xi.sharding.is_fully_replicated and len(xi.sharding.device_set) == 4
    assert not state.particles[0].step.sharding.is_fully_replicated
    shared = np.asarray(jax.flatten_util.ravel_pytree(state.theta)[0])
    print("SHARED", float(np.max(np.abs(shared - out[1]))))
    # resume on another device count and communication mode: 3 steps on 4 devices (all-reduce),
    # then 3 more on 2 devices with shared randomness
    c.outer_steps, c.checkpoint_every, c.export_every = 3, 3, 3
    train.train(c, f"{sys.argv[1]}/r42", progress=False, mesh=outer.make_mesh(jax.devices()[:4]))
    s.outer_steps = 6
    state = train.train(
        s, f"{sys.argv[1]}/r42", progress=False, mesh=outer.make_mesh(jax.devices()[:2])
    )
    assert len(state.particles[0].step.sharding.device_set) == 2
    resumed = np.asarray(jax.flatten_util.ravel_pytree(state.theta)[0])
    print("RESUMED", float(np.max(np.abs(resumed - out[1]))))
    diff = float(np.max(np.abs(out[1] - out[4])))
    moved = float(np.max(np.abs(out[1] - np.asarray(
        jax.flatten_util.ravel_pytree(outer.initial_theta(spec.from_config(c)))[0]))))
    print("RESULT", diff, moved)
    # communication: the all-reduce payload of one group's compiled estimator on 4 devices
    from meta_train.hlo import collective_bytes
    mesh = outer.make_mesh(jax.devices()[:4])
    run, zoo = spec.from_config(c), config_lib.build_zoo(c)
    cache = outer.GroupCache(run, mesh)
    groups = outer.groups_for_step(cache, zoo, run, 0)
    st = outer.init_state(run, groups, mesh, outer.meta_optimizer(run.meta_opt))
    args = (st.theta, st.particles[0], jax.random.key(0), groups[0].data)
    hlo = groups[0].estimate.lower(*args).compile().as_text()
    payload = collective_bytes(hlo).get("all-reduce", 0)
    theta_bytes = sum(x.nbytes for x in jax.tree.leaves(st.theta))
    print("ALLREDUCE", payload, theta_bytes)
    """
)


def test_one_vs_four_devices(tmp_path):
    env = _env(devices=4)
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
    # ... identically on 1 and on 4 devices, up to the summation order of the all-reduce: each
    # AdamW step moves theta by at most lr = 1e-3, and the runs agree to 1% of one step
    assert diff < 1e-5 * TOL_STEPS, diff
    shared = [x for x in out.stdout.splitlines() if x.startswith("SHARED")][-1]
    # shared randomness on 4 devices: the same theta as the all-reduce on 1
    assert float(shared.split()[1]) < 1e-5 * TOL_STEPS, shared
    resumed = [x for x in out.stdout.splitlines() if x.startswith("RESUMED")][-1]
    # 4 devices -> checkpoint -> 2 devices (shared randomness) ends where the 1-device run does
    assert float(resumed.split()[1]) < 1e-5 * TOL_STEPS, resumed
    # one theta-sized sum per group crosses devices (PES sums its two terms before reducing),
    # plus a few metric scalars
    line = [x for x in out.stdout.splitlines() if x.startswith("ALLREDUCE")][-1]
    payload, theta_bytes = map(int, line.split()[1:])
    assert theta_bytes <= payload < theta_bytes + 256, (payload, theta_bytes)


def test_population_that_does_not_divide_is_refused(tmp_path):
    env = _env(devices=4)
    out = subprocess.run(
        _cli(tmp_path / "w", "--config.pairs_per_group=6"),
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 2, out.stderr[-2000:]
    assert "lopt-meta-train: error: config.pairs_per_group=6" in out.stderr
    assert "4 devices" in out.stderr and "multiple of 4" in out.stderr
    # refused before the workdir records the run, so a corrected command can use the same one
    assert not (tmp_path / "w" / "run.json").exists()


def test_url_workdir_is_refused(tmp_path):
    """A ``gs://`` workdir is refused, not quietly written to a local ``gs:`` directory."""
    out = subprocess.run(
        _cli("gs://bucket/run"), env=_env(), cwd=tmp_path, capture_output=True, text=True
    )
    assert out.returncode != 0
    assert "URL workdirs are not supported" in out.stderr, out.stderr[-2000:]
    assert not (tmp_path / "gs:").exists()


_XLA_CACHE = {"dir": ""}


@pytest.fixture(scope="module", autouse=True)
def _module_compilation_cache(tmp_path_factory):
    """One persistent XLA cache for this module's meta-training processes: a resume, or a run
    on the same process count, loads the programs an earlier run compiled (the same
    executables, so the same numbers) instead of compiling them again."""
    _XLA_CACHE["dir"] = str(tmp_path_factory.mktemp("xla_cache"))
    yield
    _XLA_CACHE["dir"] = ""


def _cli(workdir, *extra):
    return [
        sys.executable,
        "-m",
        "meta_train.cli",
        "--config=quickstart",
        f"--workdir={workdir}",
        "--noprogress",
        f"--compilation_cache_dir={_XLA_CACHE['dir']}",
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
    """jax.distributed on 127.0.0.1 with gloo CPU collectives: 2 processes x 1 device, with the
    all-reduce and (after a resume) with shared randomness."""
    import numpy as np

    env = _env()
    one = subprocess.run(_cli(tmp_path / "one"), env=env, capture_output=True, timeout=600)
    assert one.returncode == 0, one.stderr[-3000:]
    dist = [
        f"--coordinator_address=127.0.0.1:{_free_port()}",
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
    np.testing.assert_allclose(
        _theta(tmp_path / "two"), _theta(tmp_path / "one"), atol=1e-5 * TOL_STEPS
    )
    assert sorted(p.name for p in (tmp_path / "two" / "checkpoints").iterdir()) == ["3", "6"]
    # only the primary process logs: one metrics row per outer step, not one per process
    rows = (tmp_path / "two" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(r)["step"] for r in rows] == list(range(1, 7))
    # resume on the other process count: the 2-process checkpoint in 1 process and the
    # 1-process checkpoint in 2 processes, the latter switched to communication by shared
    # randomness (meta_train.communication: only per-pair scalars cross processes); both
    # continue to the same theta
    more = ["--config.outer_steps=9"]
    dist[0] = f"--coordinator_address=127.0.0.1:{_free_port()}"
    shared = ["--config.communication=shared_randomness", *more, *dist]
    runs = [_cli(tmp_path / "two", *more)]
    runs += [_cli(tmp_path / "one", *shared, f"--process_id={i}") for i in range(2)]
    procs = [
        subprocess.Popen(r, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        for r in runs
    ]
    errs = [p.communicate(timeout=600)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], [e[-2000:] for e in errs]
    assert all("resumed from the checkpoint at step 6" in e for e in errs[:2]), errs[:2]
    np.testing.assert_allclose(_theta(tmp_path / "two"), _theta(tmp_path / "one"), atol=1e-5 * 9)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _steps_logged(workdir) -> int:
    p = workdir / "metrics.jsonl"
    return len(p.read_text().splitlines()) if p.exists() else 0


KILL_STEPS = ["--config.outer_steps=40", "--config.checkpoint_every=4"]


def _launch_two(workdir, env) -> list[subprocess.Popen]:
    """Both processes of a 2-process run (heartbeat timeout 10 s) on a fresh port."""
    dist = [
        f"--coordinator_address=127.0.0.1:{_free_port()}",
        "--num_processes=2",
        "--cpu_collectives=gloo",
        "--distributed_timeout_s=10",
    ]
    return [
        subprocess.Popen(
            _cli(workdir, *KILL_STEPS, *dist, f"--process_id={i}"),
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]


def _kill_after(procs, victim: int, workdir, steps: int) -> tuple[str, float]:
    """SIGKILL ``procs[victim]`` once ``steps`` steps are logged; return the survivor's stderr
    and the seconds it took to exit. A survivor still running after 120 s is killed and the test
    fails (it hung)."""
    import signal
    import time

    deadline = time.time() + 300
    while _steps_logged(workdir) < steps and time.time() < deadline:
        if any(p.poll() is not None for p in procs):  # one stopped early: stop both, report
            for p in procs:
                p.kill()
            raise AssertionError([p.communicate()[1][-2000:] for p in procs])
        time.sleep(0.02)
    procs[victim].send_signal(signal.SIGKILL)
    t_kill = time.time()
    survivor = procs[1 - victim]
    try:
        err = survivor.communicate(timeout=120)[1]
    except subprocess.TimeoutExpired:
        survivor.kill()
        survivor.communicate()
        raise AssertionError("the surviving process hung after its peer was killed") from None
    finally:
        procs[victim].wait()
    assert survivor.returncode not in (0, None), err[-3000:]
    return err, time.time() - t_kill


def test_killed_process_stops_the_other_and_both_resume(tmp_path):
    """SIGKILL one of two processes: the other exits with a clear error within a bounded time
    (no hang); restarting both resumes from the last checkpoint and ends on the theta of an
    uninterrupted single-process run."""
    import numpy as np

    env = _env()
    one = subprocess.run(
        _cli(tmp_path / "one", *KILL_STEPS), env=env, capture_output=True, timeout=600
    )
    assert one.returncode == 0, one.stderr[-3000:]

    err, seconds = _kill_after(_launch_two(tmp_path / "two", env), 1, tmp_path / "two", 9)
    assert seconds < 120
    assert "lopt-meta-train: error: process 0 of 2 stopped" in err, err[-3000:]
    assert "restart all processes" in err
    killed_at = _steps_logged(tmp_path / "two")
    assert killed_at < 40

    procs = _launch_two(tmp_path / "two", env)
    errs = [p.communicate(timeout=600)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [e[-2000:] for e in errs]
    assert "resumed from the checkpoint at step" in errs[0], errs[0][-2000:]
    # 40 outer steps: the same 1e-5-per-step tolerance as above
    np.testing.assert_allclose(_theta(tmp_path / "two"), _theta(tmp_path / "one"), atol=4e-4)
    rows = (tmp_path / "two" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(r)["step"] for r in rows] == list(range(1, 41))  # primary logs, once each


def test_killed_coordinator_stops_the_other(tmp_path):
    """SIGKILL process 0 (it hosts the coordination service): process 1 exits non-zero within
    seconds. Either its failed collective is reported by the CLI, or jax's coordination client
    aborts the process first (from a C++ thread, which Python cannot intercept)."""
    err, seconds = _kill_after(_launch_two(tmp_path / "w", _env()), 0, tmp_path / "w", 3)
    assert seconds < 60
    assert (
        "lopt-meta-train: error: process 1 of 2 stopped" in err
        or "JAX distributed service detected fatal errors" in err
    ), err[-3000:]


def test_sigterm_to_one_process_stops_both_at_one_step(tmp_path):
    """SIGTERM to one of two processes: jax's preemption service (orbax's
    ``reached_preemption``) makes both stop after the same step, checkpoint it and exit 75;
    restarting both resumes from that step and finishes."""
    import re
    import signal
    import time

    procs = _launch_two(tmp_path / "w", _env())
    deadline = time.time() + 300
    while _steps_logged(tmp_path / "w") < 6 and time.time() < deadline:
        if any(p.poll() is not None for p in procs):
            for p in procs:
                p.kill()
            raise AssertionError([p.communicate()[1][-2000:] for p in procs])
        time.sleep(0.02)
    procs[1].send_signal(signal.SIGTERM)
    errs = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [75, 75], [e[-2000:] for e in errs]
    stopped = {int(m) for e in errs for m in re.findall(r"stopped by SIGTERM after step (\d+)", e)}
    assert len(stopped) == 1, [e[-2000:] for e in errs]  # both at the same step
    (step,) = stopped
    assert 6 <= step < 40 and (tmp_path / "w" / "checkpoints" / str(step)).is_dir()
    procs = _launch_two(tmp_path / "w", _env())
    errs = [p.communicate(timeout=600)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [e[-2000:] for e in errs]
    assert f"resumed from the checkpoint at step {step}" in errs[0], errs[0][-2000:]
    rows = (tmp_path / "w" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(r)["step"] for r in rows] == list(range(1, 41))


KERNEL_SCRIPT = textwrap.dedent(
    r"""
    import re, sys, jax, jax.numpy as jnp, numpy as np
    from jax.sharding import PartitionSpec
    import learned_opt, tasks
    from meta_train import communication, cpu_rng, estimators, outer
    from meta_train.particles import LengthSchedule
    cpu_rng.use_unrolled_threefry()
    assert len(jax.devices()) == 2
    task = tasks.get("mlp_mnist1d_w32")
    data = task.load_data()
    flat = lambda t: np.asarray(jax.flatten_util.ravel_pytree(t)[0])
    target = f'custom_call_target="{learned_opt.cpu_kernel.TARGET}"'

    def calls(hlo):
        found = [l for l in hlo.splitlines() if target in l]
        lead = sorted({re.search(r"= \(f32\[(\d+),", l).group(1) for l in found})
        return f"{len(found)} {','.join(lead) or '-'} {hlo.count(' all-gather(')}"

    grads = {}
    for kernel in (False, True):
        lopt = learned_opt.MLPLOpt(cpu_kernel=kernel)
        theta = lopt.init_meta_params(jax.random.key(0))
        for n in (1, 2):
            mesh = outer.make_mesh(jax.devices()[:n])
            five = estimators.EstimatorSettings(
                truncation_length=5, sigma=0.01, episode=LengthSchedule("constant", 5, 5))
            est = estimators.pes(task, lopt, five, mesh=mesh)
            part, rep = communication.particles_sharding(mesh), outer.replicated(mesh)
            init = jax.jit(lambda k: est.init(k, theta, 4), out_shardings=part)
            step = jax.jit(est.estimate, in_shardings=(rep, part, rep, rep),
                           out_shardings=(rep, part, rep))
            args = (theta, init(jax.random.key(1)), jax.random.key(2), data)
            print("HLO", int(kernel), n, calls(step.lower(*args).compile().as_text()))
            grads[kernel, n] = flat(step(*args)[0])
    same = np.array_equal(grads[True, 2], grads[False, 2])
    diff = float(np.abs(grads[True, 1] - grads[False, 2]).max())
    print("GRADS", int(same), diff, float(np.abs(grads[False, 2]).max()))

    # a shard_map manual over the mesh: every device calls the kernel on its own 2 of 4 members
    lopt = learned_opt.MLPLOpt(cpu_kernel=True)
    tx = lopt.optimizer(lopt.init_meta_params(jax.random.key(0)))
    rng = np.random.default_rng(0)
    params = {"w": jnp.asarray(rng.standard_normal((4, 8, 5)), jnp.float32)}
    grads_in = {"w": jnp.asarray(rng.standard_normal((4, 8, 5)), jnp.float32)}

    def members(p, g):
        return jax.vmap(lambda p, g: tx.update(g, tx.init(p), p)[0])(p, g)

    mesh = outer.make_mesh(jax.devices()[:2])
    spec = PartitionSpec(communication.AXIS)
    per_device = jax.jit(jax.shard_map(members, mesh=mesh, in_specs=spec, out_specs=spec,
                                       check_vma=False))
    print("SHARD_MAP", calls(per_device.lower(params, grads_in).compile().as_text()))
    want = jax.jit(members)(params, grads_in)  # one device
    got = per_device(params, grads_in)
    err, size = np.abs(flat(got) - flat(want)).max(), np.abs(flat(want)).max()
    print("SHARD_MAP_DIFF", float(err), float(size))
    """
)


@pytest.mark.compiler
@pytest.mark.skipif(
    shutil.which(os.environ.get("CXX", "g++")) is None
    or os.environ.get("LOPT_CPU_KERNEL", "1") == "0",
    reason="no C++ compiler to build learned_opt's CPU kernel (or LOPT_CPU_KERNEL=0)",
)
def test_the_cpu_kernel_runs_only_in_programs_of_one_device():
    """``MLPLOpt(cpu_kernel=True)`` in the PES estimator on 2 simulated devices: on a 1-device
    mesh the program calls the kernel on the 4 pairs' members; on a 2-device mesh (automatic
    partitioning, no shard_map in the estimators) it holds neither the call nor an all-gather,
    and its estimate is the default optimizer's bit for bit (XLA's version), and the 1-device
    kernel's agrees with it to float32 rounding. In a shard_map manual over the mesh, every
    device calls the kernel on its own members, with no all-gather."""
    out = subprocess.run(
        [sys.executable, "-c", KERNEL_SCRIPT],
        env=_env(2),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    lines = out.stdout.splitlines()
    rows = {tuple(int(v) for v in x.split()[1:3]): x.split()[3:] for x in lines if x[:3] == "HLO"}
    assert rows[0, 1] == rows[0, 2] == ["0", "-", "0"], rows
    assert int(rows[1, 1][0]) > 0 and rows[1, 1][1:] == ["4", "0"], rows
    assert rows[1, 2] == ["0", "-", "0"], rows
    same, diff, size = (float(v) for v in out.stdout.split("GRADS")[1].split()[:3])
    assert same == 1 and size > 0 and diff <= 2e-4 * size, (same, diff, size)
    shard = out.stdout.split("SHARD_MAP ")[1].split()[:3]
    assert int(shard[0]) > 0 and shard[1:] == ["2", "0"], shard
    diff, size = (float(v) for v in out.stdout.split("SHARD_MAP_DIFF")[1].split()[:2])
    assert size > 0 and diff <= 1e-4 * size, (diff, size)
