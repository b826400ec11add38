"""lopt-data: offline prepare of mnist from ../shared/data/raw/mnist, list, and errors."""

import importlib.util
import os
import pathlib

import numpy as np
import pytest

from tasks import cli, data

RAW = pathlib.Path(__file__).resolve().parents[3] / "shared" / "data" / "raw" / "mnist"
HAS_TF = importlib.util.find_spec("tensorflow") is not None


@pytest.mark.slow
@pytest.mark.skipif(not HAS_TF, reason="TensorFlow (the `prepare` extra) is not installed")
@pytest.mark.skipif(not RAW.is_dir(), reason=f"raw mnist archives not found at {RAW}")
def test_offline_prepare_mnist_matches_shared_copy(tmp_path, monkeypatch):
    monkeypatch.setenv("LOPT_DATA_CACHE", "0")
    data_dir = tmp_path / "tfds"
    path = cli.prepare("mnist", str(data_dir), manual_dir=str(RAW))
    assert pathlib.Path(path).is_dir()
    assert (data_dir / "downloads" / "mnist").is_dir()  # its own download dir
    assert list(pathlib.Path(path).glob("*.array_record*"))  # readable without TensorFlow
    assert data.dataset_info("mnist", str(data_dir))["splits"] == {"train": 60000, "test": 10000}
    ours = data._read_image_split(
        "mnist", "test", str(data_dir), data.prepared_version("mnist", str(data_dir))
    )
    shared = data.load("mnist", data_dir=os.environ["TFDS_DATA_DIR"])["test"]
    np.testing.assert_array_equal(ours["image"], shared["image"])
    np.testing.assert_array_equal(ours["label"], shared["label"])


def test_prepare_without_tensorflow_says_so(monkeypatch, tmp_path):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda n, *a: None if n == "tensorflow" else real(n, *a)
    )
    with pytest.raises(cli.PrepareError, match="needs TensorFlow.*prepare"):
        cli.prepare("mnist", str(tmp_path))


@pytest.mark.skipif(not HAS_TF, reason="TensorFlow (the `prepare` extra) is not installed")
def test_prepare_bad_inputs(tmp_path):
    with pytest.raises(cli.PrepareError, match="manual_dir"):
        cli.prepare("mnist", str(tmp_path), manual_dir=str(tmp_path / "missing"))
    with pytest.raises(cli.PrepareError, match="not_a_real_dataset"):
        cli.prepare("not_a_real_dataset", str(tmp_path))


def test_list_shows_prepared_and_embedded():
    listed = {d["name"]: d for d in cli.list_datasets(os.environ["TFDS_DATA_DIR"])}
    assert listed["mnist"]["splits"] == {"train": 60000, "test": 10000}
    assert listed["tiny_shakespeare"]["version"] == "1.0.0"
    assert "mnist1d" in listed


@pytest.mark.parametrize(
    "argv, message",
    [
        ([], "expected a command: list, or prepare NAME"),
        (["lsit"], "unknown command 'lsit'"),
        (["list", "mnist"], "unexpected argument 'mnist' after list"),
        (["prepare"], "prepare takes one dataset NAME"),
        (["prepare", "mnist", "fashion_mnist"], "prepare takes one dataset NAME"),
    ],
)
def test_main_usage_errors(capsys, argv, message):
    assert cli.main(["lopt-data", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"lopt-data: error: {message}") and len(err.splitlines()) == 1, err
