"""Named configs: each module has ``get_config() -> ml_collections.ConfigDict``.

The modules in this folder are the shipping recipes (:data:`NAMES`); those in ``experiments/``
record runs that led up to a recipe or did not ship (:data:`EXPERIMENTS`, each named
``experiments/NAME``). Both lists are read from the files. :func:`path` turns a name into its file
(``lopt-meta-train --config=NAME``), :func:`get` into its ConfigDict.
"""

from __future__ import annotations

import importlib
import pathlib

_HERE = pathlib.Path(__file__).resolve().parent
_EXPERIMENTS = "experiments"


def _modules(folder: pathlib.Path) -> tuple[str, ...]:
    return tuple(
        sorted(p.stem for p in folder.glob("*.py") if p.stem.isidentifier() and p.stem[0] != "_")
    )


NAMES = _modules(_HERE)  # the shipping recipes
EXPERIMENTS = tuple(f"{_EXPERIMENTS}/{n}" for n in _modules(_HERE / _EXPERIMENTS))

__doc__ = f"{__doc__ or ''}\nShipping recipes: {', '.join(NAMES)}.\n"  # read from the files


def _file(name: str) -> pathlib.Path | None:
    return _HERE / f"{name}.py" if name in NAMES or name in EXPERIMENTS else None


def path(name_or_path: str) -> str:
    """File path of a config given by name (``scale_free``, ``experiments/scale_free_gate``) or
    path; ``NAME:arg`` keeps its argument, anything not a name is returned as is."""
    file_part, sep, arg = str(name_or_path).partition(":")
    file = _file(file_part)
    return str(name_or_path) if file is None else str(file) + sep + arg


def unknown(name: str) -> str:
    """The error message for a config name that is neither a recipe nor an experiment."""
    text = f"unknown config {name!r}; shipping recipes: {', '.join(NAMES)}"
    if f"{_EXPERIMENTS}/{name}" in EXPERIMENTS:
        return f"{text} ({name!r} is an experiment record: use '{_EXPERIMENTS}/{name}')"
    return f"{text}; experiment records: '{_EXPERIMENTS}/NAME' (configs.EXPERIMENTS)"


def get(name: str):
    """The ConfigDict of a named config (``"quickstart"``, ``"experiments/hyper_broad"``)."""
    if _file(name) is None:
        raise ValueError(unknown(name))
    return importlib.import_module(f"meta_train.configs.{name.replace('/', '.')}").get_config()
