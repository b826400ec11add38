"""Shared test set-up: real datasets from ../shared/data/tfds, CPU only."""

import os
import pathlib

_REPO = pathlib.Path(__file__).resolve().parents[1]
_SHARED_TFDS = _REPO.parent / "shared" / "data" / "tfds"
if "TFDS_DATA_DIR" not in os.environ and _SHARED_TFDS.is_dir():
    os.environ["TFDS_DATA_DIR"] = str(_SHARED_TFDS)
os.environ.setdefault("JAX_PLATFORMS", "cpu")
