"""Command-line checks of ``lopt-meta-train`` that turn mistakes into one-line errors.

* :func:`check_config_args`: ``--config=`` names a known config or an existing file, and every
  ``--config.FIELD=value`` names a field the config has (absl would print a traceback).
* :func:`split_lopt_overrides`: ``--config.lopt.config.SETTING=value`` sets a setting of the
  learned optimizer even when the config file leaves ``lopt.config`` empty (``ml_collections``
  refuses new keys); the values are parsed as Python literals and checked by
  ``learned_opt.from_config`` when the optimizer is built.
* :func:`disk_error`: a full disk or a read-only filesystem found anywhere in an exception chain.
"""

from __future__ import annotations

import ast
import errno
import importlib.util
import pathlib

from meta_train import configs

LOPT_PREFIX = "--config.lopt.config."
_DISK_ERRNOS = {
    errno.ENOSPC: "disk full",
    errno.EDQUOT: "disk quota exceeded",
    errno.EFBIG: "file too large",
    errno.EROFS: "read-only filesystem",
}
_DISK_TEXTS = {
    "No space left on device": "disk full",
    "Disk quota exceeded": "disk quota exceeded",
    "File too large": "file too large",
    "Read-only file system": "read-only filesystem",
}


class UsageError(ValueError):
    """A command line that cannot work (the message is one line)."""


def parse_value(text: str):
    """A Python literal (``8``, ``1e-3``, ``(32, 32)``, ``True``), ``true``/``false``, or the
    text itself."""
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def split_lopt_overrides(argv: list[str], out: dict) -> list[str]:
    """Remove ``--config.lopt.config.K=V`` arguments from ``argv`` into ``out`` (K -> value)."""
    rest = []
    for arg in argv:
        if arg.startswith(LOPT_PREFIX):
            key, sep, value = arg[len(LOPT_PREFIX) :].partition("=")
            if not sep or not key or "." in key:
                raise UsageError(f"{arg}: expected {LOPT_PREFIX}SETTING=value")
            out[key] = parse_value(value)
        else:
            rest.append(arg)
    return rest


def load_config(spec: str):
    """``get_config()`` of a config file given as ``path.py`` or ``path.py:arg``."""
    file_part, _, arg = spec.partition(":")
    path = pathlib.Path(file_part)
    if not path.is_file():
        raise UsageError(
            f"--config={spec}: {configs.unknown(spec)}; or give the path of a config file"
        )
    mod_spec = importlib.util.spec_from_file_location(f"_lopt_config_{path.stem}", path)
    module = importlib.util.module_from_spec(mod_spec)
    try:
        mod_spec.loader.exec_module(module)
        return module.get_config(arg) if arg else module.get_config()
    except Exception as e:  # noqa: BLE001 - the user's config file failed
        raise UsageError(
            f"--config={spec}: the config file failed: {type(e).__name__}: {e}"
        ) from None


def check_config_args(argv: list[str]) -> None:
    """Raise :class:`UsageError` for an unknown config, or a ``--config.FIELD`` it lacks."""
    specs = [a.split("=", 1)[1] for a in argv if a.startswith("--config=")]
    if not specs:
        return
    config = load_config(specs[-1])
    for arg in argv:
        if not arg.startswith("--config."):
            continue
        field = arg[len("--config.") :].split("=", 1)[0]
        node, done = config, []
        for part in field.split("."):
            if not hasattr(node, "keys") or part not in node:
                where = "config" + "".join(f".{d}" for d in done)
                known = sorted(node.keys()) if hasattr(node, "keys") else []
                raise UsageError(
                    f"--config.{field}: unknown config field {part!r} in {where} "
                    f"(fields: {', '.join(known)})"
                )
            node, done = node[part], [*done, part]


def disk_error(exc: BaseException) -> str | None:
    """'disk full' (or quota, file size, read-only) if that caused ``exc``, else ``None``."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in _DISK_ERRNOS:
            return _DISK_ERRNOS[exc.errno]
        for text, what in _DISK_TEXTS.items():
            if text in str(exc):
                return what
        exc = exc.__cause__ or exc.__context__
    return None
