"""Datasets: real tfds data in ../shared/data/tfds, embedded MNIST-1D, downsampling, errors."""

import os
import random
import socket

import numpy as np
import pytest

from tasks import data


@pytest.fixture(scope="module")
def mnist():
    return data.load("mnist")


@pytest.fixture(scope="module")
def fashion():
    return data.load("fashion_mnist")


@pytest.mark.parametrize(
    "name,mean",  # published pixel means of the training sets (torchvision normalisation)
    [("mnist", 0.1307), ("fashion_mnist", 0.2860)],
)
def test_image_datasets_shapes_counts_statistics(name, mean, mnist, fashion):
    ds = {"mnist": mnist, "fashion_mnist": fashion}[name]
    assert set(ds) == {"train", "test"}
    for split, n in (("train", 60_000), ("test", 10_000)):
        x, y = ds[split]["image"], ds[split]["label"]
        assert x.shape == (n, 28, 28, 1) and x.dtype == np.uint8
        assert y.shape == (n,) and y.dtype == np.int32
        counts = np.bincount(y, minlength=10)
        assert counts.size == 10 and counts.sum() == n
        assert counts.min() > 0.08 * n  # every class present, roughly balanced
    x = ds["train"]["image"]
    assert abs(x.mean() / 255.0 - mean) < 2e-3
    assert x.min() == 0 and x.max() == 255
    assert not np.array_equal(ds["train"]["image"][:100], ds["test"]["image"][:100])


def test_fashion_differs_from_mnist(mnist, fashion):
    assert not np.array_equal(mnist["test"]["image"][:10], fashion["test"]["image"][:10])


def test_arrays_are_read_only_and_cached(mnist):
    assert data.load("mnist") is mnist
    with pytest.raises(ValueError):
        mnist["train"]["image"][0, 0, 0, 0] = 1


def _block_average_reference(images, size):
    """Area average by exact up-sampling: repeat pixels k times so that k*28 is a multiple of
    size, then average equal blocks (closed form of the area integral)."""
    n, h = images.shape[0], images.shape[1]
    k = size // np.gcd(h, size)
    up = np.repeat(np.repeat(images.astype(np.float64), k, axis=1), k, axis=2)
    b = h * k // size
    return up.reshape(n, size, b, size, b, -1).mean(axis=(2, 4))


@pytest.mark.parametrize("size", [8, 14, 16])
def test_downsample_is_area_average(mnist, size):
    x = mnist["test"]["image"][:64]
    got = data.downsample(x, size)
    ref = _block_average_reference(x, size)
    assert got.shape == (64, size, size, 1) and got.dtype == np.uint8
    np.testing.assert_allclose(got, np.clip(np.rint(ref), 0, 255), atol=1)  # float rounding
    assert abs(got.mean() - x.mean()) < 0.5  # area averaging preserves the mean


def test_downsampled_load_matches_downsample(mnist):
    d8 = data.load("mnist", 8)
    assert d8["train"]["image"].shape == (60_000, 8, 8, 1)
    np.testing.assert_array_equal(
        d8["test"]["image"][:100], data.downsample(mnist["test"]["image"][:100], 8)
    )
    np.testing.assert_array_equal(d8["train"]["label"], mnist["train"]["label"])


def test_tiny_shakespeare():
    ds = data.load("tiny_shakespeare")
    train, test = ds["train"]["tokens"], ds["test"]["tokens"]
    assert train.dtype == np.uint8 and train.shape == (1_003_854,)
    assert test.shape == (55_770,)
    vocab = np.array(list(data.SHAKESPEARE_VOCAB))
    assert len(vocab) == 65 and len(set(data.SHAKESPEARE_VOCAB)) == 65
    assert np.unique(train).size == 65  # every vocabulary character occurs in train
    assert "".join(vocab[train[:14]]) == "First Citizen:"
    # Character statistics: space and 'e' are the most frequent characters of English prose.
    top = vocab[np.argsort(np.bincount(train, minlength=65))[::-1][:2]]
    assert set(top) == {" ", "e"}


def test_mnist1d_embedded_deterministic_and_offline(monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("mnist1d generation touched the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    np_state, py_state = np.random.get_state()[1].copy(), random.getstate()  # noqa: NPY002
    a = data._mnist1d.__wrapped__()
    b = data._mnist1d.__wrapped__()
    np.testing.assert_array_equal(np.random.get_state()[1], np_state)  # noqa: NPY002
    assert random.getstate() == py_state
    for split, n in (("train", 4000), ("test", 1000)):
        assert a[split]["image"].shape == (n, 40) and a[split]["image"].dtype == np.float32
        np.testing.assert_array_equal(a[split]["image"], b[split]["image"])
        np.testing.assert_array_equal(a[split]["label"], b[split]["label"])
        assert set(np.unique(a[split]["label"])) == set(range(10))
    x = np.concatenate([a["train"]["image"], a["test"]["image"]])
    assert abs(x.mean()) < 1e-3 and abs(x.std() - 1) < 1e-3  # the package standardises


def test_missing_dataset_names_prepare_command(tmp_path):
    with pytest.raises(data.DatasetNotPreparedError, match="lopt-data prepare cifar10"):
        data.load("cifar10", data_dir=str(tmp_path))
    assert list(tmp_path.iterdir()) == []  # nothing written into the data dir


def test_npz_cache_roundtrip(tmp_path, monkeypatch):
    monkeypatch.setenv("LOPT_CACHE_DIR", str(tmp_path))
    data_dir = os.environ["TFDS_DATA_DIR"]
    version = data.prepared_version("tiny_shakespeare", data_dir)
    first = data._cached("tiny_shakespeare", version, "test", data_dir, data._read_text_split)
    files = list(tmp_path.rglob("*.npz"))
    assert len(files) == 1 and "tiny_shakespeare" in str(files[0])

    def fail(*a):
        raise AssertionError("cache not used")

    second = data._cached("tiny_shakespeare", version, "test", data_dir, fail)
    np.testing.assert_array_equal(first["text"], second["text"])


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
@pytest.mark.parametrize("size", [8, 16, 28])
def test_autoencoder_normaliser_is_pixel_variance(name, size):
    from tasks.image import PIXEL_VARIANCE

    x = data.load(name, size)["train"]["image"].astype(np.float64) / 255.0
    assert PIXEL_VARIANCE[(name, size)] == pytest.approx(x.var(axis=0).mean(), rel=0.01)
