"""The console entry modules define their absl flags when run, not when imported; each command's
``--help`` shows its own flags first and exits 0, and a bad command line is one line and exit 2."""

import importlib
import os
import pathlib
import re
import subprocess
import sys

import pytest
from absl import flags

ENTRY_MODULES = ("eval.cli", "eval.main_job", "meta_train.cli", "tasks.cli")


def test_all_entry_modules_import_in_one_process():
    # a fresh interpreter: nothing else has touched absl's global FLAGS there
    code = (
        "import importlib\n"
        "from absl import flags\n"
        f"for m in {ENTRY_MODULES!r}:\n"
        "    importlib.import_module(m)\n"
        "assert 'workdir' not in flags.FLAGS, 'a module defined flags at import'\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]


@pytest.mark.parametrize(
    "module, argv, expected",
    [
        ("eval.cli", ["--workdir=/w", "--seeds=2"], dict(workdir="/w", seeds=2, steps=0)),
        ("eval.main_job", ["--seeds=5"], dict(workdir="runs/quickstart", seeds=5)),
        ("tasks.cli", ["--data_dir=/d"], dict(data_dir="/d", manual_dir=None)),
    ],
)
def test_each_entry_module_defines_its_own_flags(module, argv, expected):
    fv = flags.FlagValues()
    importlib.import_module(module).define_flags(fv)
    fv(["prog", *argv])
    assert {k: fv[k].value for k in expected} == expected


def test_meta_train_requires_config_and_workdir():
    from meta_train import cli

    def parse(*args):
        argv, lopt = cli.command_line(["prog", *args])
        fv = flags.FlagValues()
        cli.define_flags(fv, argv)
        fv(argv)
        return fv, lopt

    with pytest.raises(flags.IllegalFlagValueError, match="config"):
        parse("--workdir=/w")
    with pytest.raises(flags.IllegalFlagValueError, match="workdir"):
        parse("--config=quickstart")
    fv, lopt = parse(
        "--config=quickstart",
        "--workdir=/w",
        "--config.outer_steps=7",
        "--config.lopt.config.lstm_hidden=8",
    )
    assert fv.workdir == "/w" and fv.config.outer_steps == 7 and lopt == {"lstm_hidden": 8}


def test_docstrings_name_every_config():
    import meta_train
    from meta_train import configs

    for doc in (meta_train.__doc__, configs.__doc__):
        words = set(re.findall(r"\w+", doc))
        missing = [n for n in configs.NAMES if n not in words]
        assert not missing, missing


# ---------------------------------------------------------------- the commands as a user runs them
REPO = pathlib.Path(__file__).resolve().parents[1]
# command -> (module, a command line that would run if nothing were wrong with it, first own flag)
COMMANDS = {
    "lopt-meta-train": ("meta_train.cli", ["--config=quickstart", "--workdir=W"], "--config"),
    "lopt-eval": ("eval.cli", ["--workdir=W"], "--workdir"),
    "lopt-quickstart": ("eval.main_job", ["--workdir=W"], "--workdir"),
    "lopt-data": ("tasks.cli", ["list"], "--data_dir"),
}
# a flag of each command that takes an integer
INT_FLAG = {
    "lopt-meta-train": "--cpu_devices",
    "lopt-eval": "--steps",
    "lopt-quickstart": "--steps",
    "lopt-data": None,
}


def _command(name, *args, tmp=None):
    module, _, _ = COMMANDS[name]
    env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=str(REPO))
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp or REPO,
        timeout=120,
    )


def test_help_flags():
    from tasks import cli_common

    for args in (["-h"], ["--help"], ["--x=1", "-?"], ["--helpshort"]):
        assert cli_common.help_requested(["prog", *args]) == "short", args
    assert cli_common.help_requested(["prog", "-h", "--helpfull"]) == "full"
    assert cli_common.help_requested(["prog", "--", "-h"]) is None
    assert cli_common.help_requested(["prog", "--hel"]) is None


@pytest.mark.parametrize("name", COMMANDS)
def test_help_shows_the_commands_own_flags_first(name):
    proc = _command(name, "-h" if name == "lopt-eval" else "--help")
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.splitlines()
    assert lines[0].startswith(f"usage: {name}"), lines[:3]
    first = COMMANDS[name][2]
    head = "\n".join(lines[:15])
    assert re.search(rf"^  {re.escape(first)}\b", head, re.M), head
    assert "--[no]logtostderr" not in proc.stdout and "--verbosity" not in proc.stdout
    assert "issue" not in proc.stdout.lower()
    full = _command(name, "--helpfull")
    assert full.returncode == 0 and "--verbosity" in full.stdout
    assert full.stdout.index(first) < full.stdout.index("--verbosity")


def test_meta_train_help_lists_the_configs():
    from meta_train import configs

    text = _command("lopt-meta-train", "--help").stdout
    names = [*configs.NAMES, *(n.rsplit("/", 1)[-1] for n in getattr(configs, "EXPERIMENTS", ()))]
    missing = [n for n in names if not re.search(rf"\b{re.escape(n)}\b", text)]
    assert not missing, missing


def _bad_lines(name):
    """Command lines that must be refused by the flag parser."""
    valid = COMMANDS[name][1]
    out = [[*valid, "--no_such_flag=3"] if INT_FLAG[name] else ["--no_such_flag", *valid]]
    if INT_FLAG[name]:
        out.append([*valid, f"{INT_FLAG[name]}=abc"])
    return out


@pytest.mark.parametrize("name", COMMANDS)
def test_a_bad_command_line_is_one_line_and_exit_2(name, tmp_path):
    for args in _bad_lines(name):
        args = [a.replace("=W", f"={tmp_path / 'w'}") for a in args]
        proc = _command(name, *args, tmp=tmp_path)
        assert proc.returncode == 2, (args, proc.returncode, proc.stderr[-2000:])
        lines = proc.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"{name}: error: "), (args, proc.stderr)
        assert "Traceback" not in proc.stderr and not proc.stdout, args
        assert not (tmp_path / "w").exists(), args  # refused before the workdir exists
        assert not (tmp_path / "runs").exists(), args


@pytest.mark.parametrize(
    "name, args, message",
    [
        ("lopt-eval", ["--stpes=3"], "unknown flag --stpes (did you mean --steps?)"),
        ("lopt-meta-train", ["--config=quickstart", "--progres"], "did you mean --progress?"),
        ("lopt-quickstart", ["--seeds=0"], "--seeds=0: "),
        ("lopt-quickstart", ["extra"], "unexpected argument 'extra'"),
        ("lopt-meta-train", ["--workdir=W"], "--config is required"),
        ("lopt-meta-train", ["--config=quickstart", "--workdir=gs://b/w"], "URL workdirs"),
        ("lopt-data", ["lsit"], "unknown command 'lsit'"),
    ],
)
def test_refusal_messages(name, args, message, tmp_path):
    args = [a.replace("=W", f"={tmp_path / 'w'}") for a in args]
    proc = _command(name, *args, tmp=tmp_path)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stderr.startswith(f"{name}: error: ") and message in proc.stderr, proc.stderr
    assert len(proc.stderr.splitlines()) == 1, proc.stderr
    assert not (tmp_path / "w").exists()


def test_quickstart_refuses_a_bad_workdir_or_suite_before_writing(tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("x")
    for args, message in [
        ([f"--workdir={afile}"], "is a file, not a directory"),
        ([f"--workdir={afile}/sub"], "is a file, not a directory"),
        ([f"--workdir={tmp_path / 'w'}", "--suite=bogus"], "unknown suite 'bogus'"),
    ]:
        proc = _command("lopt-quickstart", *args, tmp=tmp_path)
        assert proc.returncode == 2, proc.stderr[-2000:]
        assert proc.stderr.startswith("lopt-quickstart: error: ") and message in proc.stderr
        assert len(proc.stderr.splitlines()) == 1, proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]


def test_suggestions_come_from_the_commands_own_flags():
    from tasks import cli_common

    fv = flags.FlagValues()
    flags.DEFINE_integer("steps", 0, "x", flag_values=fv)
    flags.DEFINE_bool("progress", True, "x", flag_values=fv)
    flags.DEFINE_integer("stderrthreshold_like", 0, "x", flag_values=fv)
    own = ["steps", "progress"]
    cmd = cli_common.Command("prog", "prog", "d")
    for argv, want in [
        (["--stpes=1"], "--stpes (did you mean --steps?)"),
        (["--noprogres"], "--noprogres (did you mean --noprogress?)"),
        (["--zzz"], "unknown flag --zzz; see prog --help"),
    ]:
        with pytest.raises(flags.Error) as e:
            fv(["prog", *argv])
        assert want in cli_common.error_message(e.value, cmd, fv, own)


@pytest.mark.parametrize("module", ENTRY_MODULES)
def test_each_main_is_short(module):
    import inspect

    lines = inspect.getsource(importlib.import_module(module).main).splitlines()
    assert len(lines) <= 80, (module, len(lines))
