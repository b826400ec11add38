"""In-process tests of the meta-trainer's refusals and restarts (each fails on the code before
it): uncommitted checkpoints, config ranges, damaged run files, the lock, SIGTERM."""

from __future__ import annotations

import json

from meta_train import workdir


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
