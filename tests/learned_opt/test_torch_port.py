"""learned_opt.torch against the optax transform: the same weights, initial parameters, gradients
and losses give the same parameters (1e-5 relative after 200 steps, float32) on an MLP, a conv
net and a transformer block, each PyTorch tensor transposed to flax's layout on the JAX side,
for the scale-free optimizer and the per-tensor LSTM one; bfloat16 parameters; the settings
agree with the JAX architectures'."""

import dataclasses
import functools
import json
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest

torch = pytest.importorskip("torch")

import learned_opt  # noqa: E402
import learned_opt.torch as lt  # noqa: E402
from learned_opt import files  # noqa: E402
from learned_opt.torch import layout as lay  # noqa: E402

STEPS = 200  # num_steps: warmup over 10 steps, then the whole cosine
torch.set_num_threads(1)  # tiny tensors; two threads on two busy cores are far slower


def mlp():
    torch.manual_seed(0)
    m = torch.nn.Sequential(
        torch.nn.Linear(12, 32), torch.nn.Tanh(), torch.nn.Linear(32, 48), torch.nn.Linear(48, 5)
    )
    torch.nn.init.zeros_(m[3].weight)  # a muP readout: zero_init="fan_in" reads it
    return m


def conv_net():
    torch.manual_seed(1)
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3),
        torch.nn.ReLU(),
        torch.nn.Conv2d(8, 16, (3, 2)),
        torch.nn.Flatten(),
        torch.nn.Linear(16 * 4, 10),
    )


class Block(torch.nn.Module):
    """A pre-norm transformer block with token and position embeddings and a readout."""

    def __init__(self, vocab=40, width=16, length=8):
        super().__init__()
        self.tok = torch.nn.Embedding(vocab, width)
        self.pos = torch.nn.Embedding(length, width)
        self.ln1 = torch.nn.LayerNorm(width)
        self.qkv = torch.nn.Linear(width, 3 * width)
        self.proj = torch.nn.Linear(width, width)
        self.ln2 = torch.nn.LayerNorm(width)
        self.up = torch.nn.Linear(width, 4 * width)
        self.down = torch.nn.Linear(4 * width, width)
        self.head = torch.nn.Linear(width, vocab, bias=False)


def block():
    torch.manual_seed(2)
    return Block()


def to_flax(x: np.ndarray, layout: str) -> np.ndarray:
    """A PyTorch tensor in flax's layout: (out, in, *k) -> (*k, in, out)."""
    if layout == "in_out" or x.ndim < 2:
        return x
    return np.transpose(x, (*range(2, x.ndim), 1, 0))


@functools.partial(jax.jit, static_argnums=(0, 4))
def _optax_run(lopt, theta, params, grads_values, num_steps):
    """``params`` after the optax transform's updates on the stacked gradients and losses."""
    tx = lopt.optimizer(theta, num_steps=num_steps)

    def step(carry, grads_value):
        params, state = carry
        grads, value = grads_value
        updates, state = tx.update(grads, state, params, value=value)
        return (jax.tree.map(lambda p, u: p + u, params, updates), state), None

    (params, _), _ = jax.lax.scan(step, (params, tx.init(params)), grads_values)
    return params


def _sequence(shapes, steps, seed):
    """Gradients (one scale per tensor, a drift and noise) and falling losses with noise."""
    rng = np.random.default_rng(seed)
    scales = 10.0 ** rng.uniform(-3, 0, len(shapes))
    drift = [rng.normal(size=s).astype(np.float32) for s in shapes]
    grads = []
    for _ in range(steps):
        grads.append(
            [
                (c * (d + rng.normal(size=s))).astype(np.float32)
                for c, d, s in zip(scales, drift, shapes, strict=True)
            ]
        )
    losses = 2.0 * np.exp(-np.arange(steps) / 80) + 0.05 * rng.random(steps)
    return grads, losses.astype(np.float32)


def _run_both(model, steps=STEPS, dtype=torch.float32, seed=0, name=learned_opt.RECOMMENDED):
    """Train ``model``'s parameters (cast to ``dtype``) with the torch port and the optax
    transform on the same gradients and losses; returns (torch params, jax params, layouts)."""
    groups = lt.param_groups(model)
    params = [p for g in groups for p in g["params"]]
    layouts = [g["layout"] for g in groups for _ in g["params"]]
    with torch.no_grad():
        for p in params:
            p.data = p.data.to(dtype)
    jdtype = jnp.bfloat16 if dtype == torch.bfloat16 else jnp.float32
    start = [p.detach().float().numpy().copy() for p in params]  # jnp.asarray may alias numpy
    grads, losses = _sequence([p.shape for p in params], steps, seed)
    opt = lt.load(name, groups, num_steps=STEPS)
    for g_step, value in zip(grads, losses, strict=True):
        for p, g in zip(params, g_step, strict=True):
            p.grad = torch.from_numpy(g).to(dtype)
        opt.step(loss=torch.tensor(float(value)))
    got = [p.detach().float().numpy().copy() for p in params]
    got = [to_flax(x, lay_) for x, lay_ in zip(got, layouts, strict=True)]

    lopt, theta = learned_opt.load_meta_params(name)
    keys = [f"p{i:03d}" for i in range(len(params))]  # sorted like the torch order: same tags
    flax = lambda xs: {
        k: jnp.array(to_flax(x, lay_), jdtype) for k, x, lay_ in zip(keys, xs, layouts, strict=True)
    }
    stacked = [np.stack([g[i] for g in grads]) for i in range(len(params))]
    stacked = {k: jnp.array(to_flax_stacked(x, lay_), jdtype) for k, x, lay_ in
               zip(keys, stacked, layouts, strict=True)}  # fmt: skip
    jparams = _optax_run(lopt, theta, flax(start), (stacked, jnp.asarray(losses)), STEPS)
    want = [np.asarray(jparams[k].astype(jnp.float32)) for k in keys]
    return got, want, [to_flax(x, lay_) for x, lay_ in zip(start, layouts, strict=True)]


def to_flax_stacked(x: np.ndarray, layout: str) -> np.ndarray:
    """:func:`to_flax` of each entry of a stack ``(steps, *shape)``."""
    if layout == "in_out" or x.ndim < 3:
        return x
    return np.transpose(x, (0, *range(3, x.ndim), 2, 1))


def _assert_close(got, want, start, rtol):
    moved = False
    for i, (a, b, s) in enumerate(zip(got, want, start, strict=True)):
        scale = max(np.max(np.abs(b)), 1e-12)
        err = np.max(np.abs(a - b)) / scale if a.size else 0.0
        assert err <= rtol, f"tensor {i} {a.shape}: relative error {err:.2e}"
        moved |= bool(np.any(np.abs(b - s) > 0))
    assert moved


@pytest.mark.parametrize("make", [mlp, conv_net, block], ids=["mlp", "conv", "transformer"])
def test_same_parameters_as_optax_after_200_steps(make):
    got, want, start = _run_both(make())
    _assert_close(got, want, start, 1e-5)


@pytest.mark.parametrize("mup", [False, True])
def test_hyper_same_parameters_as_optax(mup, tmp_path):
    """The per-tensor LSTM optimizer (hyper_small_v2; with mup=True, its weights read as muLO:
    hidden steps times 1/fan_in, fan-in by the PyTorch layout) on the transformer block."""
    saved = tmp_path / "hyper"
    shutil.copytree(files.PRETRAINED_DIR / "hyper_small_v2", saved)
    desc = json.loads((saved / "lopt.json").read_text())
    desc["config"]["mup"] = mup
    (saved / "lopt.json").write_text(json.dumps(desc))
    got, want, start = _run_both(block(), name=saved)
    _assert_close(got, want, start, 1e-5)


def test_bfloat16_parameters_follow_optax():
    got, want, start = _run_both(mlp(), steps=30, dtype=torch.bfloat16)
    _assert_close(got, want, start, 2e-2)  # a bfloat16 ulp is 4e-3 of the value


def test_roles_in_pytorch_layouts():
    """Fans and the Muon view of nn.Linear, conv and embedding weights."""
    assert lay.fans((32, 12), "out_in") == (12, 32)  # nn.Linear(12, 32): (out, in)
    assert lay.fans((8, 3, 3, 2), "out_in") == (18, 8)  # Conv2d(3, 8, (3, 2)): HWIO (3, 2, 3, 8)
    assert lay.fans((40, 16), "in_out") == (40, 16)  # Embedding(40, 16): flax's (vocab, width)
    assert lay.fans((16, 4, 5), "out_in") == (20, 16)  # Conv1d: not a Muon leaf (3-d)
    assert lay.fans((7,), "out_in") == (1, 7) and lay.fans((), "out_in") == (1, 1)
    assert lay.matrix_shape((8, 3, 3, 2), "out_in") == (8, 18)
    assert [lay.is_muon(s) for s in [(2, 3), (1, 2, 3), (1, 2, 3, 4), (5,)]] == [
        True,
        False,
        True,
        False,
    ]


def test_settings_agree_with_scale_free_lopt():
    """Same fields and defaults as ScaleFreeLOpt, and the same settings refused."""
    ours = {f.name: f.default for f in dataclasses.fields(lt.ScaleFreeSettings)}
    theirs = {f.name: f.default for f in dataclasses.fields(learned_opt.ScaleFreeLOpt)}
    assert ours == theirs
    assert lt.ScaleFreeSettings().num_features == learned_opt.ScaleFreeLOpt().num_features
    for bad in [
        {"muon_beta": 1.0},
        {"hidden": 0},
        {"eps": 0.0},
        {"zero_init": "two"},
        {"timescales": [10, -1]},
        {"loss_decays": [0.9]},
        {"mixing_fan_cap": -1.0},
        {"relative": 1},
    ]:
        with pytest.raises(ValueError):
            learned_opt.ScaleFreeLOpt(**bad)
        with pytest.raises(ValueError):
            lt.ScaleFreeSettings(**bad)


def test_hyper_settings_agree_with_hyper_lopt():
    ours = {f.name: f.default for f in dataclasses.fields(lt.HyperSettings)}
    theirs = {f.name: f.default for f in dataclasses.fields(learned_opt.HyperLOpt)}
    assert ours == theirs
    lopt = learned_opt.HyperLOpt()
    assert lt.HyperSettings().num_tensor_features == lopt.num_tensor_features
    assert lt.HyperSettings().num_generated == lopt.num_generated
    for bad in [{"mlp_hidden": 1}, {"momentum_decays": []}, {"rms_decay": 1.0}, {"mup": 0}]:
        with pytest.raises(ValueError):
            learned_opt.HyperLOpt(**bad)
        with pytest.raises(ValueError):
            lt.HyperSettings(**bad)


def test_architecture_names_agree_with_storage():
    from learned_opt import files, storage

    assert set(files.ARCHITECTURE_NAMES) == set(storage.ARCHITECTURES)


def test_theta_equals_the_jax_loader():
    for name in ["scale_free_v7", "scale_free_v1", "hyper_small_v2"]:
        _, theta = lt.load_theta(name)
        _, jtheta = learned_opt.load_meta_params(name)
        flat, jflat = jax.tree_util.tree_leaves_with_path(theta), jax.tree.leaves(jtheta)
        assert len(flat) == len(jflat)
        for (_, a), b in zip(flat, jflat, strict=True):
            np.testing.assert_array_equal(a.numpy(), np.asarray(b))
