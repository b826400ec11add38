"""The ``machine`` entry of every benchmark's JSON: what the figures were measured on.

from machine_info import machine_info      # a sibling module of the benchmark scripts
report["machine"] = machine_info()         # jax's default backend
report["machine"] = machine_info("cpu")    # leaves an accelerator untouched
"""

from __future__ import annotations

import os
import pathlib
import platform
import sys


def _cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo, else ``platform.processor()``."""
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def machine_info(backend: str | None = None, **extra) -> dict:
    """Platform, CPU, Python and jax versions, the load average and the devices of ``backend``
    (None: jax's default backend; name ``"cpu"`` to keep a GPU free for subprocesses), plus
    ``extra`` fields."""
    import jax

    devices = jax.devices(backend)
    return dict(
        platform=platform.platform(),
        processor=platform.processor(),
        cpu=_cpu_model(),
        cpu_count=os.cpu_count(),
        python=platform.python_version(),
        jax=jax.__version__,
        backend=devices[0].platform,
        device_kind=devices[0].device_kind,
        devices=[str(d) for d in devices],
        load_average=os.getloadavg(),
        **extra,
    )


def run_main(main, *args):
    """Run a benchmark's ``main(*args)``; a dataset that is not prepared (or a config value that
    makes no sense) ends it with one line on stderr naming the dataset and the command that
    prepares it (or the field), exit 1, not a traceback."""
    from meta_train.config import ConfigError
    from tasks.data import DatasetNotPreparedError

    try:
        return main(*args)
    except (DatasetNotPreparedError, ConfigError) as e:
        raise SystemExit(f"{pathlib.Path(sys.argv[0]).name}: error: {e}") from None
