"""Tasks: training with adam, in-jit batches vs host draws, muP, reparameterisation, errors."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import tasks
from tasks import common, lm, training

# Every family's default task, tiny enough to train a few hundred steps in seconds.
TRAINABLE = [
    ("mlp_mnist8_w32", 1e-2),
    ("mlp_mnist1d_w32", 1e-2),
    ("mlp_mnist8_w128_mup", 1e-2),
    pytest.param("conv_mnist8_c8-16", 1e-2, marks=pytest.mark.slow),
    ("ae_mnist8_w32_z8", 1e-2),
    # 1 layer: compiles faster
    pytest.param(tasks.CharLMTask(seq_len=16, width=32, depth=1), 3e-3, marks=pytest.mark.slow),
    pytest.param(
        tasks.CharLMTask(seq_len=16, width=32, depth=1, mup=True), 1e-2, marks=pytest.mark.slow
    ),
    ("quadratic_d16_k100_n0.1_b32", 1e-2),
    ("linreg_d16_n0.1_b32", 1e-2),
    ("mlp_mnist1d_w32_reparam", 1e-2),
]


@pytest.fixture(scope="module")
def device_data():
    cache = {}

    def get(task):
        key = (getattr(task, "dataset", type(task).__name__), getattr(task, "image_size", None))
        if key not in cache:
            cache[key] = jax.device_put(task.load_data())
        return cache[key]

    return get


def _train(task, data, steps, lr, seed=0):
    tx = optax.adam(lr)
    key = jax.random.key(seed)
    params = task.init(key)

    @jax.jit
    def run(params, data):  # data as an argument: closed-over arrays would become constants
        (p, _), losses = training.train(task, tx, params, data, jax.random.split(key, steps))
        return p, losses

    eval_key = jax.random.key(99)
    eval_loss = jax.jit(task.eval_loss)
    before = float(eval_loss(params, eval_key, data))
    params, losses = run(params, data)
    after = float(eval_loss(params, eval_key, data))
    return before, after, np.asarray(losses)


def _with_id(entry):
    """``entry`` (a ``(name or task, lr)`` pair or a ``pytest.param`` of one) with the task's name
    as its test id."""
    values, marks = (entry.values, entry.marks) if hasattr(entry, "values") else (entry, ())
    return pytest.param(*values, marks=marks, id=getattr(values[0], "name", values[0]))


@pytest.mark.standard_promotion  # runs optax's transforms
@pytest.mark.parametrize("name,lr", [_with_id(e) for e in TRAINABLE])
def test_every_family_trains_with_adam(name, lr, device_data):
    task = tasks.get(name) if isinstance(name, str) else name
    before, after, losses = _train(task, device_data(task), 200, lr)
    assert losses.dtype == np.float32 and np.isfinite(losses).all()
    assert after < 0.8 * before, (before, after)
    assert losses[-20:].mean() < 0.8 * losses[:5].mean()


def test_reference_task():
    task = tasks.get("mlp_mnist8_w32")
    params = task.init(jax.random.key(0))
    shapes = jax.tree.map(jnp.shape, params)
    assert shapes == {
        "input": {"kernel": (64, 32), "bias": (32,)},
        "output": {"kernel": (32, 10), "bias": (10,)},
    }
    assert task.num_params == 2410 and task.batch_size == 128
    assert task.loss_normalizer == pytest.approx(math.log(10))


def test_image_batch_in_jit_matches_host_draw(device_data):
    task = tasks.get("mlp_mnist8_w32")
    host = task.load_data()
    key = jax.random.key(7)
    got = jax.jit(lambda k, d: task.batch(k, d))(key, device_data(task))
    idx = np.asarray(common.draw_indices(key, host["train"]["label"].shape[0], task.batch_size))
    np.testing.assert_array_equal(np.asarray(got["image"]), host["train"]["image"][idx])
    np.testing.assert_array_equal(np.asarray(got["label"]), host["train"]["label"][idx])
    assert got["image"].dtype == jnp.uint8 and got["image"].shape == (128, 8, 8, 1)
    ev = jax.jit(lambda k, d: task.batch(k, d, "test", task.eval_batch_size))(
        key, device_data(task)
    )
    idx = np.asarray(common.draw_indices(key, 10_000, task.eval_batch_size))
    np.testing.assert_array_equal(np.asarray(ev["label"]), host["test"]["label"][idx])


def test_lm_batch_in_jit_matches_host_windows(device_data):
    task = tasks.get("lm_shakespeare_s32_w32_d2")
    tokens = task.load_data()["train"]["tokens"]
    key = jax.random.key(3)
    got = np.asarray(jax.jit(lambda k, d: task.batch(k, d))(key, device_data(task))["tokens"])
    starts = np.asarray(
        jax.random.randint(key, (task.batch_size,), 0, tokens.size - task.seq_len, jnp.int32)
    )
    want = np.stack([tokens[s : s + task.seq_len + 1] for s in starts])
    np.testing.assert_array_equal(got, want)
    assert got.shape == (32, 33)
    np.testing.assert_array_equal(lm.window_indices(key, tokens.size, 32, 32)[:, 0], starts)


def test_mup_parameterisation():
    task = tasks.get("mlp_mnist8_w128_mup")
    params = task.init(jax.random.key(0))
    assert not np.any(np.asarray(params["output"]["kernel"]))  # zero-initialised output layer
    tags = task.param_tags()
    assert jax.tree.structure(tags) == jax.tree.structure(params)
    assert tags["input"]["kernel"] == "input" and tags["output"]["kernel"] == "output"
    batch = {"image": jnp.ones((4, 8, 8, 1), jnp.uint8), "label": jnp.arange(4)}
    assert float(task.loss(params, None, batch)) == pytest.approx(math.log(10), rel=1e-6)
    # 1/width output multiplier: logits = h W / width.
    params["output"]["kernel"] = jnp.ones_like(params["output"]["kernel"])
    x = common.as_float_images(batch["image"]).reshape(4, -1)
    h = jax.nn.relu(x @ params["input"]["kernel"] + params["input"]["bias"])
    logits = task.model.apply({"params": params}, x)
    np.testing.assert_allclose(
        logits, jnp.sum(h, -1, keepdims=True) / 128 * jnp.ones((1, 10)), rtol=1e-5
    )
    lm_tags = tasks.get("lm_shakespeare_s32_w32_d2_mup").param_tags()
    flat = jax.tree.leaves(lm_tags)
    assert {"input", "hidden", "output"} <= set(flat)
    assert lm_tags["block_0"]["qkv"]["kernel"] == "hidden"


@pytest.mark.slow
def test_mup_char_transformer_initial_loss_under_jit():
    """Initialising the muP char transformer and taking its held-out loss in one jitted program
    (as the evaluation's step-0 point does, also under vmap) gives log(vocab), as eager does
    (it came out NaN or 0.0 with a compile-time-constant zero readout), to the float32 rounding
    of a mean over 512 tokens, which differs between CPUs (1e-5 relative)."""
    task = tasks.CharLMTask(seq_len=16, width=16, depth=1, mup=True, eval_batch_size=32)
    data = task.load_data()
    initial_loss = lambda k: task.eval_loss(task.init(k), k, data)  # noqa: E731
    key = jax.random.key(0)
    assert float(initial_loss(key)) == pytest.approx(math.log(65), rel=1e-5)
    assert float(jax.jit(initial_loss)(key)) == pytest.approx(math.log(65), rel=1e-5)
    both = jax.jit(jax.vmap(initial_loss))(jax.random.split(key, 2))
    np.testing.assert_allclose(both, math.log(65), rtol=1e-5)


def test_reparam_wrapper_is_loss_invariant(device_data):
    base = tasks.ImageMLPTask(dataset="mnist1d", image_size=40, width=16)
    shapes = jax.eval_shape(base.init, jax.random.key(0))
    extreme = {"input": {"kernel": 1e-3, "bias": 1e3}, "output": {"kernel": 1e3, "bias": 1e-3}}
    scales = jax.tree.map(lambda _, s: jnp.float32(s), shapes, extreme)
    wrapped = tasks.ReparamTask(base=base, scales=scales)
    data = device_data(base)
    batch = base.batch(jax.random.key(2), data)
    p = base.init(jax.random.key(3))
    u = jax.tree.map(lambda a, s: a / s, p, wrapped.scales)  # what the optimizer sees
    np.testing.assert_allclose(wrapped.loss(u, None, batch), base.loss(p, None, batch), rtol=1e-5)
    gu = jax.grad(wrapped.loss)(u, None, batch)
    gp = jax.grad(base.loss)(p, None, batch)
    jax.tree.map(
        lambda a, b, s: np.testing.assert_allclose(a, b * s, rtol=1e-4, atol=1e-6),
        gu,
        gp,
        wrapped.scales,
    )
    init_u = wrapped.init(jax.random.key(3))
    jax.tree.map(
        lambda a, b, s: np.testing.assert_allclose(a * s, b, rtol=1e-5), init_u, p, wrapped.scales
    )
    assert wrapped.group_key != base.group_key and wrapped.batch_size == base.batch_size


def test_reparam_scales_are_log_uniform():
    base = tasks.ImageMLPTask(dataset="mnist1d", image_size=40, width=16)
    one = tasks.augment.draw_scales(base, jax.random.key(0))
    assert jax.tree.structure(one) == jax.tree.structure(base.init(jax.random.key(0)))
    draws = np.asarray(common.log_uniform(jax.random.key(1), 1e-3, 1e3, shape=(2000,)))
    logs = np.log10(draws)
    assert logs.min() >= -3 and logs.max() <= 3
    assert logs.min() < -2.9 and logs.max() > 2.9
    assert abs(logs.mean()) < 0.2 and abs(logs.std() - 6 / math.sqrt(12)) < 0.1  # U[-3, 3]


def test_sample_arrays_vmaps_within_one_group():
    fam = tasks.zoo("quickstart").families[1][0]  # quadratic family
    task = fam.sample(jax.random.key(0))
    stacked = jax.vmap(fam.sample_arrays, in_axes=(0, None))(
        jax.random.split(jax.random.key(1), 4), task
    )
    assert stacked.center.shape == (4, task.dim) and stacked.init_scale.shape == (4,)
    params = jax.vmap(lambda t, k: t.init(k))(stacked, jax.random.split(jax.random.key(2), 4))
    losses = jax.vmap(lambda t, p: t.eval_loss(p, None, {}))(stacked, params)
    assert losses.shape == (4,) and len(set(np.asarray(losses).tolist())) == 4
    one = jax.tree.map(lambda a: a[0], stacked)
    assert one.group_key == task.group_key
    # Closed form: at x = c the noise-free quadratic is zero.
    assert float(one.eval_loss({"x": one.center}, None, {})) == pytest.approx(0.0, abs=1e-10)
    assert task.replace(default_steps=5).group_key == task.group_key


def test_reparam_family_sample_arrays_in_jit():
    fam = tasks.ReparamFamily(tasks.registry.MLP_MNIST1D)
    task = fam.sample(jax.random.key(0))
    new = jax.jit(fam.sample_arrays)(jax.random.key(1), task)
    assert new.group_key == task.group_key
    assert not np.allclose(jax.tree.leaves(new.scales), jax.tree.leaves(task.scales))


@pytest.mark.parametrize(
    "make,field",
    [
        (lambda: tasks.ImageMLPTask(width=-1), "width"),
        (lambda: tasks.ImageMLPTask(width=0), "width"),
        (lambda: tasks.ImageMLPTask(activation="swishy"), "activation"),
        (lambda: tasks.ImageMLPTask(dataset="mnist1d", image_size=8), "image_size"),
        (lambda: tasks.ImageMLPTask(batch_size=0), "batch_size"),
        (lambda: tasks.ImageMLPTask(depth=-2), "depth"),
        (lambda: tasks.ConvTask(conv_channels=(8, -1)), "conv_channels"),
        (lambda: tasks.CharLMTask(width=30, heads=4), "heads"),
        (lambda: tasks.CharLMTask(dataset="wikitext"), "dataset"),
        (lambda: tasks.QuadraticTask(cond=0.5), "cond"),
        (lambda: tasks.LinearRegressionTask(dim=-3), "dim"),
    ],
)
def test_invalid_config_names_the_field(make, field):
    with pytest.raises(ValueError, match=field):
        make()


def test_unknown_dataset_load_error(tmp_path, monkeypatch):
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path))
    with pytest.raises(tasks.DatasetNotPreparedError, match="lopt-data prepare not_a_dataset"):
        tasks.ImageMLPTask(dataset="not_a_dataset").load_data()


def test_param_shapes_shared_only_where_the_shapes_are_equal():
    """``common.param_shapes`` caches by ``param_shape_key``: MLPs that differ in dataset,
    activation, batch size or reparameterisation share an entry, and each entry is every such
    task's own ``eval_shape`` of its init; a different width or input size does not share."""
    from tasks.augment import ReparamTask
    from tasks.image import ImageMLPTask

    base = ImageMLPTask(dataset="mnist", image_size=8, width=32)
    same = [
        base,
        ImageMLPTask(dataset="fashion_mnist", image_size=8, width=32, activation="tanh"),
        ImageMLPTask(dataset="mnist", image_size=8, width=32, batch_size=64),
        ReparamTask.create(base, jax.random.PRNGKey(0)),
    ]
    other = [
        ImageMLPTask(dataset="mnist", image_size=8, width=64),
        ImageMLPTask(dataset="mnist", image_size=16, width=32),
        ImageMLPTask(dataset="mnist1d", image_size=None, width=32),
    ]
    assert len({t.param_shape_key for t in same}) == 1
    assert len({t.param_shape_key for t in [base, *other]}) == 1 + len(other)
    for t in same + other:
        want = jax.eval_shape(t.init, jax.random.key(1))
        assert jax.tree.structure(common.param_shapes(t)) == jax.tree.structure(want)
        for a, b in zip(
            jax.tree.leaves(common.param_shapes(t)), jax.tree.leaves(want), strict=True
        ):
            assert (a.shape, a.dtype) == (b.shape, b.dtype), t.name
