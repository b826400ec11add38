"""In-process tests of the meta-trainer's refusals and restarts (each fails on the code before
it): uncommitted checkpoints, config ranges, damaged run files, the lock, SIGTERM."""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys

import pytest

from meta_train import checkpoint, configs, stopping, train, workdir
from meta_train import config as config_lib


# ------------------------------------------------------------------ an uncommitted write
def _metrics(path, steps):
    path.write_text("".join(json.dumps({"step": s, "loss": 1.0}) + "\n" for s in steps))


def _export(path, step):
    path.mkdir(parents=True)
    (path / "lopt.json").write_text(json.dumps({"metadata": {"outer_step": step}}))


def test_an_uncommitted_first_checkpoint_is_not_history(tmp_path):
    (tmp_path / "checkpoints" / "30.orbax-checkpoint-tmp").mkdir(parents=True)
    _metrics(tmp_path / "metrics.jsonl", range(1, 31))
    _export(tmp_path / "export", 20)
    _export(tmp_path / "exports" / "step_20", 20)
    assert workdir.history(tmp_path, 30) == []
    assert workdir.committed_checkpoints(tmp_path) == []


def test_what_implies_a_committed_checkpoint_is_history(tmp_path):
    _metrics(tmp_path / "metrics.jsonl", range(1, 32))  # step 31 ran after the save at 30
    assert workdir.history(tmp_path, 30) == ["metrics.jsonl"]
    (tmp_path / "checkpoints" / "30").mkdir(parents=True)
    _export(tmp_path / "exports" / "step_40", 40)
    (tmp_path / "export").mkdir()  # unreadable: counted
    assert workdir.history(tmp_path, 30) == ["checkpoints/", "export/", "exports/", "metrics.jsonl"]
    assert workdir.committed_checkpoints(tmp_path) == [30]


# ------------------------------------------------------------------ config ranges
@pytest.mark.parametrize(
    "field, value",
    [
        ("meta_opt.learning_rate", 1e30),
        ("meta_opt.learning_rate", 2.0),
        ("sigma", 5.0),
        ("loss_clip", 1e12),
        ("meta_opt.weight_decay", 1e3),
        ("late_weight", 1e9),
        ("outer_steps", 2**40),
        ("episode.max_length", 2**31),
    ],
)
def test_out_of_range_config_values_are_refused(field, value):
    c = configs.get("quickstart")
    *parents, leaf = field.split(".")
    node = c
    for name in parents:
        node = node[name]
    node[leaf] = value
    with pytest.raises(config_lib.ConfigError, match=rf"config\.{re.escape(field)}="):
        config_lib.validate(c)


def test_every_shipped_config_is_in_range():
    for name in configs.NAMES:
        config_lib.validate(configs.get(name))


# ------------------------------------------------------------------ refusals write nothing
def test_missing_init_from_is_refused_before_the_workdir_is_made(tmp_path):
    c = configs.get("quickstart")
    c.init_from = str(tmp_path / "no_such_optimizer")
    w = tmp_path / "w"
    with pytest.raises(config_lib.ConfigError, match=r"config\.init_from="):
        train.train(c, w, progress=False)
    assert not w.exists()


# ------------------------------------------------------------------ damaged run files
@pytest.mark.parametrize("content", [b"{not json", b"\xff\xfe\x00garbage", b"[1, 2]"])
def test_unreadable_run_json_is_one_clear_error(tmp_path, content):
    c = configs.get("quickstart")
    (tmp_path / "run.json").write_bytes(content)
    with pytest.raises(checkpoint.WorkdirMismatchError, match=r"run\.json' cannot be read"):
        checkpoint.check_workdir(tmp_path, config_lib.run_identity(c))
    assert (tmp_path / "run.json").read_bytes() == content  # left as it was


def test_lock_that_is_a_directory_is_one_clear_error(tmp_path):
    (tmp_path / workdir.LOCK_FILE).mkdir()
    with pytest.raises(workdir.WorkdirError, match=r"cannot be opened as the workdir's lock"):
        workdir.lock(tmp_path)


def test_say_survives_a_closed_stderr(monkeypatch):
    r, w = os.pipe()
    os.close(r)
    monkeypatch.setattr(sys, "stderr", os.fdopen(w, "w"))
    stopping.say("gone")  # a broken pipe: nothing raised
    with contextlib.suppress(OSError):
        sys.stderr.close()
    stopping.say("closed")  # a closed file: nothing raised


def test_a_dataset_that_is_not_prepared_is_refused_before_the_workdir_is_made(
    tmp_path, monkeypatch
):
    from tasks import DatasetNotPreparedError

    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "empty_tfds"))
    c = configs.get("char_lm_specialist")
    c.init_from = ""
    w = tmp_path / "w"
    with pytest.raises(DatasetNotPreparedError, match="tiny_shakespeare"):
        train.train(c, w, progress=False)
    assert not w.exists()
