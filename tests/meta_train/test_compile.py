"""Compilation out of the hot path: shared group programs, compile-ahead, the time split."""

import json
import logging
import os
import subprocess
import sys

import jax
import numpy as np
import pytest
from mt_toys import subprocess_env

import tasks
from meta_train import configs, outer, spec, train
from tasks import family as family_lib
from tasks import registry
from tasks.family import GridFamily, SharedPrograms, Zoo, support
from tasks.synthetic import QuadraticTask

# four configurations of one shape signature: cond and noise change the task, not its shapes
QUAD = GridFamily(
    "quad_test",
    QuadraticTask,
    choices=(("cond", (10.0, 1000.0)), ("noise", (0.0, 0.1))),
    fixed=(("dim", 8), ("batch_size", 8)),
    array_ranges=(("init_scale", (0.5, 2.0)),),
)


@pytest.fixture()
def quad_zoo(monkeypatch):
    monkeypatch.setitem(registry.ZOOS, "quad_test", Zoo("quad_test", ((QUAD, 1.0),)))
    return registry.ZOOS["quad_test"]


def small(**over):
    c = configs.get("quickstart")
    c.zoo = "quad_test"
    c.num_groups, c.pairs_per_group, c.truncation_length = 2, 2, 5
    c.episode.min_length, c.episode.max_length = 10, 20
    c.group_resample_every = 2
    c.outer_steps, c.checkpoint_every, c.export_every = 8, 100, 100
    c.eval.num_tasks = 0
    for k, v in over.items():
        c[k] = v
    return c


def _theta(state):
    return np.asarray(jax.flatten_util.ravel_pytree(jax.device_get(state.theta))[0])


def _train_logging_compiles(config, workdir, caplog, **kw):
    caplog.clear()
    # the global flag, not the (thread-local) context manager: the compile-ahead thread logs too
    jax.config.update("jax_log_compiles", True)
    try:
        with caplog.at_level(logging.WARNING):
            state = train.train(config, workdir, progress=False, **kw)
    finally:
        jax.config.update("jax_log_compiles", False)
    return state, list(caplog.records)


def test_no_estimator_compiled_after_first_epoch_with_shared_programs(quad_zoo, tmp_path, caplog):
    # the draws of 4 epochs visit several configurations; one program runs them all
    c = small(share_programs=True)
    seen = {t.group_key for e in range(4) for _, t in outer.draw_groups(quad_zoo, 0, e, 2)}
    assert len(seen) >= 3
    _, records = _train_logging_compiles(c, tmp_path / "shared", caplog, compile_ahead=False)
    compiles = [r for r in records if "Compiling" in r.getMessage()]
    est = [r for r in compiles if "estimate" in r.getMessage()]
    assert len(est) == 1, [r.getMessage()[:120] for r in est]
    # ... whereas one program per configuration compiles each new one (the test can fail)
    _, records = _train_logging_compiles(small(), tmp_path / "per_config", caplog)
    est = [r for r in records if "Compiling" in r.getMessage() and "estimate" in r.getMessage()]
    assert len(est) == len(seen)


def test_compile_ahead_is_exact_and_off_the_main_thread(quad_zoo, tmp_path, caplog):
    c = small()
    draws = [{t.group_key for _, t in outer.draw_groups(quad_zoo, 0, e, 2)} for e in range(4)]
    ahead, records = _train_logging_compiles(c, tmp_path / "ahead", caplog, compile_ahead=True)
    est = [r for r in records if "Compiling" in r.getMessage() and "estimate" in r.getMessage()]
    # the first draw compiles on the main thread (nothing to overlap with), every later one in
    # the compile-ahead thread
    main = [r for r in est if r.threadName == "MainThread"]
    assert len(main) == len(draws[0]), [(r.threadName, r.getMessage()[:80]) for r in est]
    assert len(est) == len(set().union(*draws))
    inline = train.train(c, tmp_path / "inline", progress=False, compile_ahead=False)
    np.testing.assert_array_equal(_theta(ahead), _theta(inline))


QUAD16 = GridFamily(  # a second shape signature
    "quad16_test",
    QuadraticTask,
    choices=(("cond", (10.0, 1000.0)),),
    fixed=(("dim", 16), ("batch_size", 8)),
    array_ranges=(("init_scale", (0.5, 2.0)),),
)


def test_shared_programs_compile_draws_ahead(monkeypatch, tmp_path, caplog):
    """With shared programs the compile-ahead thread is handed ``LOOKAHEAD_SHARED`` draws ahead
    (none past the run's end), each once; every program first met after draw 0 compiles in
    that thread (that compiling ahead leaves theta as it is: the test above)."""
    zoo = Zoo("two_shapes_test", ((QUAD, 0.8), (QUAD16, 0.2)))
    monkeypatch.setitem(registry.ZOOS, "two_shapes_test", zoo)
    c = small(share_programs=True, zoo="two_shapes_test", outer_steps=12)  # 6 draws
    run = spec.from_config(c)
    cache = outer.GroupCache(run, outer.make_mesh(), zoo=zoo, compile_ahead=True)
    cache.close()
    handed = []
    cache.prefetch = lambda draws, theta: handed.append(draws)
    epochs = outer.Epochs(cache, zoo, run)
    draws = [outer.draw_groups(zoo, run.seed, e, run.groups.num_groups) for e in range(6)]
    keys = lambda ds: [[t.group_key for _, t in d] for d in ds]
    assert cache.lookahead == outer.LOOKAHEAD_SHARED >= 5
    epochs.prefetch_ahead(0, None)  # at the first step: every later draw of the run
    assert keys(handed) == keys(draws[1:])
    for step in range(1, c.outer_steps):
        epochs.prefetch_ahead(step, None)
    assert keys(handed) == keys(draws[1:])  # ... and none twice, none past the run's end
    # the draws meet both signatures, the second one only after draw 0 (else the test is moot)
    shared = SharedPrograms(zoo)
    sigs = [{shared.lookup(f, t)[0].group_key for f, t in d} for d in draws]
    assert len(sigs[0]) == 1 and len(set().union(*sigs)) == 2, sigs
    _, records = _train_logging_compiles(c, tmp_path, caplog, compile_ahead=True)
    est = [r for r in records if "Compiling" in r.getMessage() and "estimate" in r.getMessage()]
    assert [r.threadName == "MainThread" for r in est] == [True, False], [
        (r.threadName, r.getMessage()[:80]) for r in est
    ]


def test_shared_programs_give_the_same_theta_and_draws(quad_zoo, tmp_path):
    per_config = train.train(small(), tmp_path / "a", progress=False)
    shared = train.train(small(share_programs=True), tmp_path / "b", progress=False)
    # same draws and the same arithmetic per configuration; only XLA's fusion differs, which
    # the ES estimate (a difference of nearly equal losses over sigma^2) magnifies a little, and
    # AdamW's first steps (about lr * sign(g)) flip for a meta-gradient entry near zero
    a, b = _theta(shared), _theta(per_config)
    close = np.abs(a - b) <= 2e-4
    assert close.mean() > 0.995, close.mean()
    lr, steps = small().meta_opt.learning_rate, small().outer_steps
    assert np.abs(a - b).max() <= 2 * lr * steps


def test_every_configuration_of_a_zoo_maps_to_its_own_member():
    zoo = tasks.zoo("quickstart")
    shared = SharedPrograms(zoo)
    n_configs = 0
    for fam, _ in zoo.families:
        for t in support(fam):
            template, sfam, _, j = shared.lookup(fam, t)
            assert template.members[j].group_key == t.group_key
            assert sfam.families[j] == fam
            n_configs += 1
    # far fewer programs than configurations, none lost
    assert shared.num_programs() < n_configs / 3
    keys = {m.group_key for tpl, _, _ in shared._by_sig.values() for m in tpl.members}
    assert len(keys) == len({(f, t.group_key) for f, _ in zoo.families for t in support(f)})


def test_switch_task_member_equals_the_task_alone():
    zoo = tasks.zoo("quickstart")
    shared = SharedPrograms(zoo)
    key = jax.random.PRNGKey(3)
    for fam, task in [zoo.sample_with_family(jax.random.PRNGKey(s)) for s in range(4)]:
        template, sfam, datas, j = shared.lookup(fam, task)
        task = fam.sample_arrays(key, task)
        st = sfam.sample_arrays(key, template)
        data = {"index": np.int32(j), "members": datas}
        params = task.init(key)
        np.testing.assert_allclose(
            jax.flatten_util.ravel_pytree(st.init(key))[0],
            jax.flatten_util.ravel_pytree(params)[0],
            rtol=1e-6,
            atol=1e-7,
        )
        batch = st.batch(key, data)
        own = task.batch(key, task.load_data())
        np.testing.assert_allclose(
            float(st.loss(params, key, batch)), float(task.loss(params, key, own)), rtol=1e-6
        )
        assert float(st.normalizer(data)) == np.float32(task.loss_normalizer)


def test_metrics_report_the_time_split(quad_zoo, tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="meta_train"):
        train.train(small(outer_steps=4), tmp_path, progress=False)
    rows = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3, 4]
    for k in ("compile_s", "device_s", "host_s", "time_compile_frac", "outer_steps_per_hour"):
        assert k in rows[0], k
    last = rows[-1]
    parts = last["time_compile_s"] + last["time_device_s"] + last["time_host_s"]
    assert parts == pytest.approx(last["time_wall_s"], abs=0.05)
    assert last["time_compile_s"] > 0 and last["time_device_s"] > 0
    summary = [r.getMessage() for r in caplog.records if "time split" in r.getMessage()]
    assert len(summary) == 1 and "compile" in summary[0] and "device" in summary[0], summary


def test_cpu_optimization_level_is_added_only_where_asked(monkeypatch):
    from meta_train import cli

    monkeypatch.setenv("JAX_PLATFORMS", "cpu")
    monkeypatch.setenv("XLA_FLAGS", "--xla_force_host_platform_device_count=2")
    assert cli.set_cpu_optimization_level(1)
    assert os.environ["XLA_FLAGS"] == (
        "--xla_force_host_platform_device_count=2 --xla_backend_optimization_level=1"
    )
    assert not cli.set_cpu_optimization_level(2)  # already set: the user's value wins
    assert os.environ["XLA_FLAGS"].count("optimization_level") == 1
    monkeypatch.delenv("XLA_FLAGS")
    assert not cli.set_cpu_optimization_level(-1)
    monkeypatch.setenv("JAX_PLATFORMS", "cuda")
    assert not cli.set_cpu_optimization_level(1)
    assert "XLA_FLAGS" not in os.environ


_ESTIMATE_AT_LEVEL = """
import sys, jax, numpy as np
import learned_opt
from meta_train import estimators
from meta_train.particles import LengthSchedule
from tasks.synthetic import QuadraticTask
task = QuadraticTask.create(jax.random.PRNGKey(3), dim=64, cond=100.0, noise=0.1, batch_size=8)
lopt = learned_opt.MLPLOpt(hidden_sizes=(16,))
theta = lopt.init_meta_params(jax.random.PRNGKey(0))
settings = estimators.EstimatorSettings(truncation_length=5, sigma=0.01,
                                        episode=LengthSchedule("log_uniform", 10, 20))
est = estimators.ESTIMATORS["pes"](task, lopt, settings)
data = jax.device_put(task.load_data())
parts = est.init(jax.random.PRNGKey(1), theta, 2)
step = jax.jit(est.estimate)
for i in range(3):
    grad, parts, _ = step(theta, parts, jax.random.PRNGKey(i), data)
np.save(sys.argv[1], np.asarray(jax.flatten_util.ravel_pytree(grad)[0]))
"""


def test_optimization_level_1_estimates_agree_with_xla_default(tmp_path):
    """The speed-up is not bit-exact (LLVM reorders float arithmetic): the same seed's PES
    meta-gradients at level 1 and at XLA's default agree to float32 rounding."""
    grads = {}
    for level in (3, 1):
        env = subprocess_env()
        env["XLA_FLAGS"] = f"--xla_backend_optimization_level={level}"
        out = tmp_path / f"grad{level}.npy"
        subprocess.run(
            [sys.executable, "-c", _ESTIMATE_AT_LEVEL, str(out)], env=env, check=True, timeout=300
        )
        grads[level] = np.load(out)
    assert np.isfinite(grads[3]).all() and np.abs(grads[3]).max() > 0
    np.testing.assert_allclose(grads[1], grads[3], rtol=1e-4, atol=1e-6 * np.abs(grads[3]).max())


def test_cpu_device_count_divides_the_population(monkeypatch):
    from meta_train import cli

    assert cli.cpu_device_count(0, 8, cores=2) == 2
    assert cli.cpu_device_count(0, 6, cores=4) == 3  # the largest count that divides 6
    assert cli.cpu_device_count(0, 7, cores=2) == 1
    assert cli.cpu_device_count(3, 8, cores=2) == 3  # asked for: refused later if it does not
    monkeypatch.setenv("JAX_PLATFORMS", "cpu")
    monkeypatch.delenv("XLA_FLAGS", raising=False)
    assert not cli.set_cpu_devices(1)
    assert "XLA_FLAGS" not in os.environ
    assert cli.set_cpu_devices(2)
    assert os.environ["XLA_FLAGS"] == "--xla_force_host_platform_device_count=2"
    assert not cli.set_cpu_devices(4)  # already set: the user's value wins
    monkeypatch.setenv("JAX_PLATFORMS", "cuda")
    monkeypatch.delenv("XLA_FLAGS")
    assert not cli.set_cpu_devices(2)


def test_meta_train_splits_particles_over_the_cores(tmp_path):
    """``lopt-meta-train`` on CPU with no device count in XLA_FLAGS: one device per usable core
    (up to a count that divides the population), or exactly ``--cpu_devices``."""
    from meta_train import cli

    env = subprocess_env()
    expected = cli.cpu_device_count(0, 4)
    for flag, count in (([], expected), (["--cpu_devices=1"], 1)):
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "meta_train.cli",
                "--config=quickstart",
                f"--workdir={tmp_path / str(count)}",
                "--noprogress",
                "--compilation_cache_dir=",
                "--config.num_groups=1",
                "--config.pairs_per_group=4",
                "--config.truncation_length=5",
                "--config.outer_steps=2",
                "--config.eval.num_tasks=0",
                *flag,
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert out.returncode == 0, out.stderr[-2000:]
        assert f"particles split over {count} cpu device(s)" in out.stderr, out.stderr[-2000:]


def test_population_gradient_is_every_members_own():
    """``SwitchTask.population_value_and_grad`` (what the estimator runs: one switch whose
    branches map over pairs and members) gives each member of each pair the loss and gradient
    of its own task alone, for every member of the MNIST-1D program (members of several batch
    sizes, padded to the largest, and several activations: several branches)."""
    zoo = tasks.zoo("small")
    shared = SharedPrograms(zoo)
    fam, task = next(
        (f, t) for f, _ in zoo.families for t in support(f) if t.name.startswith("mlp_mnist1d")
    )
    template, sfam, datas, _ = shared.lookup(fam, task)
    pairs, keys = 3, jax.random.split(jax.random.PRNGKey(5), 3)
    population = jax.jit(template.population_value_and_grad)
    stack = lambda trees: jax.tree.map(lambda *x: np.stack(x), *trees)
    pairs_of = lambda per_pair: zip(per_pair, keys, strict=True)
    own_grad = jax.jit(lambda t, q, k, b: jax.value_and_grad(t.loss)(q, k, b))
    batch_of = jax.jit(lambda t, k, d: t.batch(k, d))
    for j, member in enumerate(template.members):
        data = {"index": np.int32(j), "members": datas}
        pair_tasks = [sfam.sample_arrays(k, template.replace(index=np.int32(j))) for k in keys]
        own = [sfam.families[j].sample_arrays(k, member) for k in keys]
        batches = [batch_of(t, k, data)["batch"] for t, k in pairs_of(pair_tasks)]
        own_batches = [batch_of(o, k, o.load_data()) for o, k in pairs_of(own)]
        params = [[o.init(jax.random.fold_in(k, m)) for m in range(2)] for o, k in pairs_of(own)]
        loss, grads = population(
            stack(pair_tasks), stack([stack(p) for p in params]), keys, stack(batches), j
        )
        assert loss.shape == (pairs, 2)
        for p in range(pairs):
            for m in range(2):
                want_loss, want = own_grad(own[p], params[p][m], keys[p], own_batches[p])
                np.testing.assert_allclose(loss[p, m], want_loss, rtol=1e-6)
                got = jax.tree.map(lambda g, p=p, m=m: g[p, m], grads)
                got = jax.flatten_util.ravel_pytree(got)[0]
                want = jax.flatten_util.ravel_pytree(want)[0]
                # float32 rounding of batched vs single products (a wrong member or branch is
                # off by the gradient's own size)
                scale = float(np.abs(want).max())
                np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * scale)


def test_members_of_one_computation_share_a_branch_and_keep_their_results():
    """The ``small`` zoo's 8x8 MLP program: mnist / fashion-mnist x relu / tanh x plain /
    reparameterised. A branch serves every member that is one computation of its array fields
    (the two datasets; a plain member and its reparameterised twin at unit scales), never two
    activations, and each member's gradient, init and batch are those of the task alone."""
    zoo = tasks.zoo("small")
    shared = SharedPrograms(zoo)
    fam, task = next(
        (f, t) for f, _ in zoo.families for t in support(f) if t.name == "mlp_fmnist8_w32_tanh"
    )
    template, sfam, datas, _ = shared.lookup(fam, task)
    names = sorted(m.name for m in template.members)
    assert len(names) == 8 and {"mlp_mnist8_w32_reparam", "mlp_fmnist8_w32_tanh"} <= set(names)
    key = jax.random.PRNGKey(7)
    for j, member in enumerate(template.members):
        own_family = sfam.families[j]
        own = own_family.sample_arrays(key, member)
        st = sfam.sample_arrays(key, template.replace(index=np.int32(j)))
        data = {"index": np.int32(j), "members": datas}
        own_data = own.load_data()
        np.testing.assert_array_equal(
            jax.flatten_util.ravel_pytree(jax.jit(st.init)(key))[0],
            jax.flatten_util.ravel_pytree(jax.jit(own.init)(key))[0],
        )
        batch = jax.jit(st.batch)(key, data)
        own_batch = jax.jit(own.batch)(key, own_data)
        for a, b in zip(jax.tree.leaves(batch["batch"]), jax.tree.leaves(own_batch), strict=True):
            np.testing.assert_array_equal(a, b)
        params = own.init(key)
        loss, grads = jax.jit(st.value_and_grad)(params, key, batch)
        own_loss, own_grads = jax.jit(jax.value_and_grad(own.loss))(params, key, own_batch)
        np.testing.assert_allclose(loss, own_loss, rtol=1e-6)
        np.testing.assert_allclose(
            jax.flatten_util.ravel_pytree(grads)[0],
            jax.flatten_util.ravel_pytree(own_grads)[0],
            rtol=1e-5,
            atol=1e-7,
        )
    # one branch per activation for the loss (and init), one per dataset for the batch
    spec = jax.eval_shape(lambda k: template.batch(k, data)["batch"], key)
    params = jax.eval_shape(template.init, key)
    loss_classes = family_lib.branch_classes(
        template.members,
        "test_loss",  # a label of its own: the cache must not hand this to the program's loss
        lambda _, t, p, k, b: t.loss(p, k, b),
        (params, key, spec),
    )
    act = [{template.members[j].activation for j, _ in c} for c in loss_classes]
    assert sorted(map(sorted, act)) == [["relu"], ["tanh"]], act
    batch_classes = family_lib.branch_classes(
        template.members,
        "test_batch",
        lambda _, t, k, d: t.batch(k, d),
        (key,),
        lambda j: (template.slots[j], (datas[template.slots[j]],)),
    )
    assert sorted(len(c) for c in batch_classes) == [4, 4] and len(datas) == 2
    init = family_lib.branch_classes(
        template.members, "test_init", lambda _, t, k: t.init(k), (key,)
    )
    assert len(init) == 2  # flax's init traces the forward pass, activation included
