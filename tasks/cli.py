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

from absl import app, flags

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


USAGE = "usage: lopt-data list | lopt-data prepare NAME [--data_dir DIR] [--manual_dir DIR]"
KNOWN = ("mnist", "fashion_mnist", "tiny_shakespeare")


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


def main(argv: list[str]) -> int:
    args = argv[1:]
    if not args or args[0] not in ("list", "prepare"):
        print(USAGE, file=sys.stderr)
        return 2
    if args[0] == "list":
        for d in list_datasets(FLAGS.data_dir):
            print(json.dumps(d))
        prepared = {d["name"] for d in list_datasets(FLAGS.data_dir)}
        missing = [n for n in KNOWN if n not in prepared]
        if missing:
            print(f"not prepared (use lopt-data prepare NAME): {', '.join(missing)}")
        return 0
    if len(args) != 2:
        print(USAGE, file=sys.stderr)
        return 2
    try:
        path = prepare(args[1], FLAGS.data_dir, FLAGS.manual_dir, FLAGS.download_dir)
    except PrepareError as e:
        print(f"lopt-data: {e}", file=sys.stderr)
        return 1
    print(f"prepared {args[1]} in {path}")
    return 0


def run() -> None:
    """Console-script entry point (``lopt-data = "tasks.cli:run"``)."""
    define_flags()
    app.run(lambda argv: sys.exit(main(argv)))


if __name__ == "__main__":
    run()
