"""Config files: each module has ``get_config() -> ml_collections.ConfigDict``.

``path(name_or_path)`` resolves a bare name (one of :data:`NAMES`: ``quickstart``, ``small``,
``mulo``, ``pod``, ``hyper_small``, ``hyper_broad``, ``scale_free``, ``scale_free_rel``,
``scale_free_mup``, ``scale_free_size``, ``scale_free_balanced``, ``scale_free_late``,
``scale_free_late28``, ``scale_free_matched``, ``scale_free_horizon``, ``scale_free_heavy28``,
``scale_free_capped``, ``scale_free_gate``, ``scale_free_gate_grow``) to the file in this
directory; anything else is taken as a path to a config file.
"""

from __future__ import annotations

import pathlib

_HERE = pathlib.Path(__file__).resolve().parent
NAMES = (
    "quickstart",
    "small",
    "mulo",
    "pod",
    "hyper_small",
    "hyper_broad",
    "scale_free",
    "scale_free_rel",
    "scale_free_mup",
    "scale_free_size",
    "scale_free_balanced",
    "scale_free_late",
    "scale_free_late28",
    "scale_free_matched",
    "scale_free_horizon",
    "scale_free_heavy28",
    "scale_free_capped",
    "scale_free_gate",
    "scale_free_gate_grow",
)


def path(name_or_path: str) -> str:
    """File path of a config given by bare name or path (``file.py:arg`` is kept as is)."""
    file_part, sep, arg = str(name_or_path).partition(":")
    if (_HERE / f"{file_part}.py").is_file() and "/" not in file_part:
        return str(_HERE / f"{file_part}.py") + sep + arg
    return str(name_or_path)


def get(name: str):
    """The ConfigDict of a named config (``get("quickstart")``)."""
    import importlib

    if name not in NAMES:
        raise ValueError(f"unknown config {name!r}; known: {', '.join(NAMES)}")
    return importlib.import_module(f"meta_train.configs.{name}").get_config()
