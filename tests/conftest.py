"""Shared test set-up: real datasets from ../shared/data/tfds, CPU only, jax's strict dtype
promotion, and fixtures ``key`` and ``tiny_config``.

Strict dtype promotion (an implicit int/float or float32/float64 mix is an error, not a silent
upcast) applies to the tests of our own numerics: ``STRICT`` below, less the tests marked
``standard_promotion``. It cannot apply where a test runs optax's own transforms, which are not
strict-clean (``optax.adam``'s bias correction computes ``decay ** count`` with an int32 count,
and so do its schedules and muon): every baseline of ``eval``, the meta-optimizer of
``meta_train`` (AdamW), and the tests that compare with optax.
"""

import os
import pathlib

_REPO = pathlib.Path(__file__).resolve().parents[1]
_SHARED_TFDS = _REPO.parent / "shared" / "data" / "tfds"
if "TFDS_DATA_DIR" not in os.environ and _SHARED_TFDS.is_dir():
    os.environ["TFDS_DATA_DIR"] = str(_SHARED_TFDS)
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402  (after JAX_PLATFORMS)
import pytest  # noqa: E402

from meta_train.cli import CPU_OPTIMIZATION_LEVEL, set_cpu_compilation  # noqa: E402

# the XLA:CPU compilation settings of lopt-meta-train, lopt-eval and lopt-quickstart (before
# jax's backend)
set_cpu_compilation(CPU_OPTIMIZATION_LEVEL)

# test files (relative to tests/) under strict promotion
STRICT = (
    "learned_opt/",
    "tasks/",
    "meta_train/test_estimator_table.py",
    "meta_train/test_estimators.py",
    "meta_train/test_communication.py",
    "meta_train/test_hlo.py",
    "eval/test_metrics.py",
    "test_entry_flags.py",
)


@pytest.fixture(autouse=True)
def _dtype_promotion(request):
    rel = pathlib.Path(request.node.path).resolve().relative_to(_REPO / "tests").as_posix()
    strict = rel.startswith(STRICT) and not request.node.get_closest_marker("standard_promotion")
    with jax.numpy_dtype_promotion("strict" if strict else "standard"):
        yield


@pytest.fixture
def key():
    """A fresh PRNG key (``jax.random.key(0)``); derive others with ``fold_in`` / ``split``."""
    return jax.random.key(0)


@pytest.fixture
def tiny_config():
    """``tiny_config(**overrides)``: ``mt_toys.tiny_config``, the quickstart meta-training config
    cut down to seconds; ``overrides`` set top-level fields."""
    from mt_toys import tiny_config as make

    return make


# Test files that take minutes on 2 CPU cores: CLI subprocesses (meta-training, evaluation, the
# fault table), several devices or processes, the shipped optimizers' fixtures, the core install
# into a fresh virtual environment (which also needs a package index). ``-m "not slow"`` leaves
# the fast tier, the edit-test loop.
SLOW_FILES = {
    "faults/test_faults.py",
    "faults/test_units.py",
    "eval/test_main_job.py",
    "eval/test_cli.py",
    "eval/test_faults_eval.py",
    "eval/test_protocol.py",
    "eval/test_runner.py",
    "eval/test_own_rule.py",
    "eval/test_specialist_recipe.py",
    "learned_opt/test_core_install.py",
    "learned_opt/test_pretrained.py",
    "learned_opt/test_torch_port.py",
    "meta_train/test_train.py",
    "meta_train/test_communication.py",
    "meta_train/test_sharding.py",
    "meta_train/test_compile.py",
    "meta_train/test_floor.py",
    "benchmarks/test_recipe_throughput.py",
    "test_entry_flags.py",
}
NETWORK_FILES = {"learned_opt/test_core_install.py"}


def pytest_collection_modifyitems(config, items):
    """Mark the tests of :data:`SLOW_FILES` ``slow`` and of :data:`NETWORK_FILES` ``network``."""
    here = pathlib.Path(__file__).parent
    for item in items:
        rel = pathlib.Path(str(item.fspath)).relative_to(here).as_posix()
        if rel in SLOW_FILES:
            item.add_marker(pytest.mark.slow)
        if rel in NETWORK_FILES:
            item.add_marker(pytest.mark.network)
