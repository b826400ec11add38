"""The core install: ``pip install learned-opt`` into a fresh virtual environment (no system site
packages) imports ``learned_opt`` without flax, orbax, tensorflow-datasets or matplotlib, loads
every shipped optimizer (the recommended one also with no name; names that share another's
weights through the installed package data) and trains a small problem with it.

Needs a package index (PyPI or the index pip is configured with); without one the test fails and
says so. About a minute with a warm pip cache.
"""

import os
import shutil
import subprocess
import textwrap
import venv

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PACKAGES = ("learned_opt", "tasks", "meta_train", "eval")  # what pyproject's packages.find takes
ABSENT = ("flax", "orbax", "tensorflow_datasets", "matplotlib", "tensorboardX", "ml_collections")

SCRIPT = textwrap.dedent(
    """
    import importlib.util, sys
    import jax, jax.numpy as jnp, optax
    import learned_opt

    absent = sys.argv[1].split(",")
    present = [m for m in absent if importlib.util.find_spec(m) is not None]
    assert not present, f"the core install pulled in {present}"
    ours = sorted({m.split(".")[0] for m in sys.modules} & {"tasks", "meta_train", "eval"})
    assert not ours, f"import learned_opt imported {ours}"
    print("version", learned_opt.__version__)

    # least squares 32 x 8, the loss of each shipped optimizer after 30 steps
    a = jax.random.normal(jax.random.key(0), (32, 8))
    b = a @ jax.random.normal(jax.random.key(1), (8,))
    loss_fn = lambda p: jnp.mean((a @ p["w"] + p["b"] - b) ** 2)
    names = learned_opt.pretrained_names()
    assert names, "no shipped optimizers in the installed package"
    assert names[0] == learned_opt.RECOMMENDED, names
    learned_opt.load(num_steps=30)  # the recommended one, with no name
    for name in names:
        tx = learned_opt.load(name, num_steps=30)
        params = {"w": jnp.zeros(8), "b": jnp.zeros(())}
        state = tx.init(params)

        @jax.jit
        def step(params, state):
            loss, grads = jax.value_and_grad(loss_fn)(params)
            updates, state = tx.update(grads, state, params, value=loss)
            return optax.apply_updates(params, updates), state, loss

        first = float(loss_fn(params))
        for _ in range(30):
            params, state, loss = step(params, state)
        last = float(loss_fn(params))
        print(name, first, last)
        assert last < 0.9 * first, (name, first, last)
    print("OK")
    """
)


def _run(args, **kw):
    return subprocess.run(args, capture_output=True, text=True, **kw)


def test_core_install_loads_and_trains(tmp_path):
    src = tmp_path / "src"  # a copy, so the build writes nothing into the checkout
    src.mkdir()
    for f in ("pyproject.toml", "README.md"):
        shutil.copy(os.path.join(REPO, f), src / f)
    for pkg in PACKAGES:
        shutil.copytree(
            os.path.join(REPO, pkg),
            src / pkg,
            ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"),
        )
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True, system_site_packages=False).create(env_dir)
    python = str(env_dir / "bin" / "python")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["JAX_PLATFORMS"] = "cpu"

    pip = _run(
        [python, "-m", "pip", "install", "-q", "--disable-pip-version-check", str(src)],
        env=env,
        timeout=600,
    )
    if pip.returncode != 0:
        raise AssertionError(
            "`pip install <repo>` into a fresh virtual environment failed. This test needs a "
            "package index (PyPI, or the index pip is configured with) to install jax, optax, "
            "numpy and msgpack; if none is reachable, that is why.\n"
            f"pip said:\n{pip.stdout[-3000:]}\n{pip.stderr[-3000:]}"
        )
    freeze = _run([python, "-m", "pip", "freeze"], env=env).stdout
    run = _run([python, "-c", SCRIPT, ",".join(ABSENT)], env=env, cwd=tmp_path, timeout=300)
    assert run.returncode == 0, f"{run.stdout}\n{run.stderr}\ninstalled:\n{freeze}"
    assert run.stdout.strip().endswith("OK"), run.stdout
