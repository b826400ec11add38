"""``lopt-data``: prepare and list the datasets of the task zoo.

    lopt-data list [--data_dir DIR]
    lopt-data prepare NAME [--data_dir DIR] [--manual_dir DIR] [--download_dir DIR]

``prepare`` runs the tfds builder's ``download_and_prepare`` into ``--data_dir`` (default
``$TFDS_DATA_DIR``). Offline (air-gapped clusters): ``--manual_dir`` holds the original archives
(e.g. ``train-images-idx3-ubyte.gz`` for mnist); tfds then uses them instead of downloading.
Each dataset gets its own download dir (``<data_dir>/downloads/<name>`` by default), because
mnist and fashion_mnist share archive names. Preparing needs TensorFlow (the ``prepare`` extra:
``pip install 'learned-opt[prepare]'``); reading prepared data does not.
"""

from __future__ import annotations

import importlib.util
import json
import os
import pathlib
import sys

from absl import flags

from tasks import cli_common
from tasks import data as data_lib

FLAGS = flags.FLAGS


def define_flags(flag_values: flags.FlagValues = FLAGS) -> None:
    """Define the flags of ``lopt-data`` in ``flag_values`` (:func:`run` calls it, not the import:
    the other entry modules can be imported beside this one)."""
    fv = dict(flag_values=flag_values)
    flags.DEFINE_string("data_dir", None, "tfds data dir (default: $TFDS_DATA_DIR).", **fv)
    flags.DEFINE_string(
        "manual_dir", None, "Folder holding the dataset's original archives (offline).", **fv
    )
    flags.DEFINE_string(
        "download_dir", None, "Download dir (default: <data_dir>/downloads/<name>).", **fv
    )


KNOWN = ("mnist", "fashion_mnist", "tiny_shakespeare")
COMMAND = cli_common.Command(
    name="lopt-data",
    usage="lopt-data list | lopt-data prepare NAME [--data_dir=DIR] [--manual_dir=DIR] [flags]",
    description=(
        "List the datasets of the task zoo (the embedded ones and those prepared under "
        "--data_dir), or prepare a tfds dataset there so that tasks can read it without "
        "TensorFlow. Preparing needs TensorFlow (the `prepare` extra); offline, --manual_dir "
        "holds the dataset's original archives (e.g. train-images-idx3-ubyte.gz for mnist)."
    ),
    epilog=f"datasets the zoo reads from tfds: {', '.join(KNOWN)}",
    positional=True,
)


class PrepareError(RuntimeError):
    pass


def prepare(
    name: str,
    data_dir: str | None = None,
    manual_dir: str | None = None,
    download_dir: str | None = None,
) -> str:
    """Prepare tfds dataset ``name`` into ``data_dir``; returns the prepared version folder."""
    if importlib.util.find_spec("tensorflow") is None:
        raise PrepareError(
            "preparing a dataset needs TensorFlow, which is not installed: install the `prepare` "
            "extra (pip install 'learned-opt[prepare]', i.e. tensorflow-cpu). Reading prepared "
            "data does not need it."
        )
    import tensorflow_datasets as tfds

    data_dir = str(data_dir or data_lib.tfds_data_dir())
    if manual_dir is not None and not pathlib.Path(manual_dir).is_dir():
        raise PrepareError(f"--manual_dir {manual_dir} is not a directory")
    try:
        builder = tfds.builder(name, data_dir=data_dir, file_format="array_record")
    except Exception as e:  # tfds raises DatasetNotFoundError with a long message
        raise PrepareError(f"unknown tfds dataset {name!r}: {str(e).splitlines()[0]}") from e
    download_dir = download_dir or os.path.join(data_dir, "downloads", name)
    config = tfds.download.DownloadConfig(manual_dir=manual_dir)
    builder.download_and_prepare(download_dir=download_dir, download_config=config)
    return str(builder.data_dir)


def list_datasets(data_dir: str | None = None) -> list[dict]:
    """Prepared datasets under ``data_dir`` (+ the embedded ones), as JSON-able dicts."""
    data_dir = str(data_dir or data_lib.tfds_data_dir())
    out = [{"name": n, "version": "embedded", "splits": {}} for n in data_lib.EMBEDDED]
    root = pathlib.Path(data_dir)
    names = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    for n in names:
        try:
            out.append(data_lib.dataset_info(n, data_dir))
        except (FileNotFoundError, KeyError, ValueError):
            continue
    return out


def _usage_error(message: str) -> int:
    print(f"{COMMAND.name}: error: {message}; see {COMMAND.name} --help", file=sys.stderr)
    return cli_common.EXIT_USAGE


def main(argv: list[str]) -> int:
    args = argv[1:]
    if not args:
        return _usage_error("expected a command: list, or prepare NAME")
    if args[0] not in ("list", "prepare"):
        return _usage_error(f"unknown command {args[0]!r}: expected list, or prepare NAME")
    if args[0] == "list" and len(args) > 1:
        return _usage_error(f"unexpected argument {args[1]!r} after list")
    if args[0] == "list":
        for d in list_datasets(FLAGS.data_dir):
            print(json.dumps(d))
        prepared = {d["name"] for d in list_datasets(FLAGS.data_dir)}
        missing = [n for n in KNOWN if n not in prepared]
        if missing:
            print(f"not prepared (use lopt-data prepare NAME): {', '.join(missing)}")
        return 0
    if len(args) != 2:
        return _usage_error("prepare takes one dataset NAME, e.g. lopt-data prepare mnist")
    try:
        path = prepare(args[1], FLAGS.data_dir, FLAGS.manual_dir, FLAGS.download_dir)
    except PrepareError as e:
        print(f"{COMMAND.name}: error: {e}", file=sys.stderr)
        return 1
    print(f"prepared {args[1]} in {path}")
    return 0


def run() -> None:
    """Console-script entry point (``lopt-data = "tasks.cli:run"``)."""
    cli_common.run(COMMAND, lambda argv: sys.exit(main(argv)), define_flags)


if __name__ == "__main__":
    run()
