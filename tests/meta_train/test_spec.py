"""The typed run spec: built once from the config, frozen, the only thing the layers below
``train`` receive, recording the config as before, and leaving results bit-identical."""

import ast
import contextlib
import dataclasses
import json
import os
import pathlib
import sys
import threading

import jax
import ml_collections
import numpy as np
import pytest
import spec_runs

from meta_train import checkpoint, configs, estimators, spec, train
from meta_train import config as config_lib
from meta_train.particles import LengthSchedule

PACKAGE = pathlib.Path(spec.__file__).resolve().parent
RECORDED = json.loads((pathlib.Path(__file__).parent / "spec_values.json").read_text())

# the config field of each estimator setting (from_config reads them, config.base declares them)
ESTIMATOR_FIELDS = {
    "name": "estimator",
    "sigma": "sigma",
    "truncation_length": "truncation_length",
    "episode": "episode",
    "loss_clip": "loss_clip",
    "log_loss": "log_loss",
    "late_weight": "late_weight",
    "communication": "communication",
    "exchange_quantization": "exchange_quantization",
    "perturbed_leaves": "trained_leaves",
}


def test_estimator_settings_declared_once():
    """``config.base`` takes the estimator's defaults from ``EstimatorSettings``, and every one
    of its settings has a config field that reaches it."""
    fields = {f.name for f in dataclasses.fields(estimators.EstimatorSettings)}
    assert fields == set(ESTIMATOR_FIELDS)
    assert spec.from_config(config_lib.base()).estimator == estimators.EstimatorSettings()
    c = config_lib.base()
    c.estimator, c.sigma, c.truncation_length, c.loss_clip = "nres", 0.02, 40, 5.0
    c.log_loss, c.late_weight = True, 1.5
    c.communication, c.exchange_quantization = "shared_randomness", "sign"
    c.episode.kind, c.episode.min_length, c.episode.max_length = "constant", 80, 90
    c.trained_leaves = "w3, b3"
    got = spec.from_config(c).estimator
    for name, field in ESTIMATOR_FIELDS.items():
        want = c[field]
        if field == "episode":
            want = LengthSchedule(want.kind, want.min_length, want.max_length)
        if field == "trained_leaves":
            want = ("b3", "w3")
        assert getattr(got, name) == want, name


def test_spec_is_frozen_and_refuses_a_bad_config():
    run = spec.from_config(config_lib.base())
    with pytest.raises(dataclasses.FrozenInstanceError):
        run.seed = 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        run.estimator.sigma = 1.0
    c = config_lib.base()
    c.sigma = -1.0
    with pytest.raises(config_lib.ConfigError, match="config.sigma"):
        spec.from_config(c)


@pytest.mark.parametrize("name", configs.NAMES + configs.EXPERIMENTS)
def test_spec_records_the_config_as_before(name):
    """What the workdir records (run.json's identity, a checkpoint's and an export's config) is
    what the config itself gave: a workdir of an earlier version resumes."""
    c = configs.get(name)
    run = spec.from_config(c)
    assert run.config_dict() == json.loads(json.dumps(c.to_dict()))
    old = json.dumps(config_lib.run_identity(c), indent=1, sort_keys=True)
    assert json.dumps(run.identity(), indent=1, sort_keys=True) == old


def test_run_json_bytes_as_before(tmp_path):
    c = spec_runs.config("pes_late_log_balanced")
    checkpoint.check_workdir(tmp_path, spec.from_config(c).identity())
    want = json.dumps(json.loads(json.dumps(config_lib.run_identity(c))), indent=1, sort_keys=True)
    assert (tmp_path / "run.json").read_text() == want


def _imports(path: pathlib.Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
    return names


def test_memory_does_not_import_outer():
    assert "meta_train.outer" not in _imports(PACKAGE / "memory.py")


# the modules that may hold the ConfigDict: where it is declared, parsed and turned into a spec
# (and the recipes in configs/)
CONFIG_LAYER = {"config.py", "spec.py", "cli.py", "overrides.py"}


@contextlib.contextmanager
def watch_config_use():
    """Yield ``(received, read)``, filled while the block runs with ``"FILE:FUNCTION"`` of every
    function of ``meta_train`` outside the config layer (and other than ``train.train``) that is
    called with a ConfigDict among its arguments, or reads a field of one."""
    received, read = set(), set()
    prefix = str(PACKAGE) + os.sep

    sites: dict = {}  # code object -> "FILE:FUNCTION" or None

    def where(frame):
        code = frame.f_code
        if code not in sites:
            name = code.co_filename[len(prefix) :]
            outside = (
                not code.co_filename.startswith(prefix)
                or os.sep in name
                or name in CONFIG_LAYER
                or (name == "train.py" and code.co_name == "train")
            )
            sites[code] = None if outside else f"{name}:{code.co_name}"
        return sites[code]

    def on_call(frame, event, arg):
        # The global trace function: called once per new frame (event "call"); returning None
        # traces nothing inside it, so the watch costs one lookup per Python call.
        if (site := where(frame)) and any(
            isinstance(v, ml_collections.ConfigDict) for v in frame.f_locals.values()
        ):
            received.add(site)

    originals = {n: getattr(ml_collections.ConfigDict, n) for n in ("__getattr__", "__getitem__")}

    def watched(method):
        def read_field(self, *args):
            if site := where(sys._getframe(1)):
                read.add(site)
            return method(self, *args)

        return read_field

    for n, method in originals.items():
        setattr(ml_collections.ConfigDict, n, watched(method))
    before = sys.gettrace(), threading.gettrace()  # e.g. a coverage tool's, put back after
    sys.settrace(on_call)
    threading.settrace(on_call)
    try:
        yield received, read
    finally:
        sys.settrace(before[0])
        threading.settrace(before[1])
        for n, method in originals.items():
            setattr(ml_collections.ConfigDict, n, method)


def test_the_watch_sees_a_config_passed_down():
    """The check below can fail: a layer handed the ConfigDict is caught, as is one reading it."""
    from meta_train import outer

    c = config_lib.base()
    with watch_config_use() as (received, read):
        outer.meta_optimizer(c.meta_opt)  # duck-typed: it would work on the ConfigDict
    assert received == read == {"outer.py:meta_optimizer"}


@pytest.mark.slow
def test_nothing_below_train_receives_or_reads_the_config(tmp_path):
    """A whole run (start, checkpoints, exports, resume): outside the config layer and
    ``train.train`` itself, no function of ``meta_train`` receives the ConfigDict or reads it."""
    c = spec_runs.config("pes_late_log_balanced")
    c.outer_steps, c.eval.suite, c.eval.num_tasks, c.eval.steps = 2, "embedded_heldout", 1, 5
    with watch_config_use() as (received, read):
        train.train(c, tmp_path, progress=False)
        c.outer_steps = 3
        train.train(c, tmp_path, progress=False)  # resumed
    rows = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert json.loads(rows[-1])["heldout_tasks"] and len(rows) == 5
    assert not received, sorted(received)
    assert not read, sorted(read)


# On a CPU other than the recording one, XLA:CPU vectorises for another instruction set and
# rounds differently; ES divides loss differences by sigma^2, so a meta-gradient's norm moves by
# up to about 3e-4 relative over these runs where the losses move by under 1e-6.
OTHER_CPU_RTOL = {"loss": 1e-5, "grad_norm": 2e-3}
OTHER_CPU_THETA_ATOL = 1e-5


def assert_near_recorded(got: dict, want: dict) -> None:
    """``got`` is ``want`` up to another CPU's rounding: the same steps, counters and theta
    size, losses and meta-gradient norms within :data:`OTHER_CPU_RTOL`, theta's first values
    within :data:`OTHER_CPU_THETA_ATOL`."""
    assert [r["step"] for r in got["metrics"]] == [r["step"] for r in want["metrics"]]
    for g, w in zip(got["metrics"], want["metrics"], strict=True):
        for k in spec_runs.METRICS:
            if k in OTHER_CPU_RTOL:
                assert g[k] == pytest.approx(w[k], rel=OTHER_CPU_RTOL[k]), (g["step"], k)
            else:
                assert g[k] == w[k], (g["step"], k)
    assert got["theta_size"] == want["theta_size"]
    np.testing.assert_allclose(got["theta_head"], want["theta_head"], atol=OTHER_CPU_THETA_ATOL)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(spec_runs.RUNS))
def test_runs_bit_identical_to_recorded(name, tmp_path):
    """Each run of ``spec_runs.RUNS`` ends on the theta, bit for bit, and logs the metrics that
    the recorded code produced (``spec_values.json``, the command inside), on the CPU it was
    recorded on (``RECORDED["_cpu"]``) with its jax; on another CPU, equal up to that CPU's
    rounding (:func:`assert_near_recorded`)."""
    got, want = spec_runs.values(name, tmp_path), RECORDED[name]
    same_machine = spec_runs.cpu_signature() == RECORDED["_cpu"]
    if not (same_machine and jax.__version__ == RECORDED["_jax"]):
        assert_near_recorded(got, want)
        return
    assert got["metrics"] == want["metrics"]
    assert got["theta_head"] == want["theta_head"]
    assert got["theta_size"] == want["theta_size"]
    assert got["theta_sha256"] == want["theta_sha256"]


def test_near_recorded_check_can_fail():
    """The other-CPU check rejects a run whose meta-gradient norm moved by 1% or whose theta
    moved by 1e-4, and accepts the recorded run itself."""
    want = RECORDED["tbptt"]
    assert_near_recorded(want, want)
    moved = json.loads(json.dumps(want))
    moved["metrics"][0]["grad_norm"] *= 1.01
    with pytest.raises(AssertionError):
        assert_near_recorded(moved, want)
    moved = json.loads(json.dumps(want))
    moved["theta_head"][0] += 1e-4
    with pytest.raises(AssertionError):
        assert_near_recorded(moved, want)
