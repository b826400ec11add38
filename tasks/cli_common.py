"""Help and one-line flag errors shared by the console commands (``lopt-meta-train``,
``lopt-eval``, ``lopt-quickstart``, ``lopt-data``).

Each command describes itself in a :class:`Command` and starts with :func:`run`, which wraps
``absl.app.run``:

- ``--help`` / ``-h`` (and absl's ``-?``, ``--helpshort``) print the usage line, the
  description, the command's own flags with their help and defaults (not absl's logging flags)
  and the command's epilog, then exit 0; ``--helpfull`` adds every other flag.
- A bad command line (an unknown or misspelled flag, a bad value such as ``--steps=abc``, a
  missing required flag, an unexpected argument) is one line ``<command>: error: ...`` on stderr
  and exit code 2, before the command creates anything. A misspelled flag gets the closest of
  the command's flags as a suggestion.
- ``absl.app.UsageError`` raised by the command's ``main`` is reported the same way.

It lives in ``tasks`` because ``tasks`` depends on no other package of this project, so all four
commands (``lopt-data`` is ``tasks.cli``) can use it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import logging
import os
import re
import sys
import textwrap
from collections.abc import Callable, Sequence

from absl import app, flags

EXIT_USAGE = 2
WIDTH = 80
SHORT_HELP = ("-h", "--help", "-help", "-?", "--helpshort", "-helpshort")
FULL_HELP = ("--helpfull", "-helpfull")


@dataclasses.dataclass(frozen=True)
class Command:
    """What ``--help`` says about a command.

    name:        the installed command, e.g. ``"lopt-eval"`` (also the prefix of its errors).
    usage:       the synopsis after ``usage: ``.
    description: one paragraph: what the command does and writes.
    epilog:      text printed after the flags (e.g. the names a flag accepts); may be a callable
                 returning it, evaluated only when help is printed.
    positional:  whether the command takes arguments besides flags (``lopt-data list``).
    """

    name: str
    usage: str
    description: str
    epilog: str | Callable[[], str] = ""
    positional: bool = False


def help_requested(argv: Sequence[str]) -> str | None:
    """``"full"`` for ``--helpfull``, ``"short"`` for ``--help`` / ``-h`` (or absl's ``-?``,
    ``--helpshort``), else None. Arguments after ``--`` are not flags."""
    args = list(argv[1:])
    if "--" in args:
        args = args[: args.index("--")]
    if any(a in FULL_HELP for a in args):
        return "full"
    if any(a in SHORT_HELP for a in args):
        return "short"
    return None


def define(define_flags: Callable[[], None], flag_values: flags.FlagValues) -> list[str]:
    """Call ``define_flags()`` and return the names of the flags it defined, in order."""
    before = set(flag_values)
    define_flags()
    return [n for n in flag_values if n not in before and flag_values[n].name == n and "." not in n]


def _default_text(flag: flags.Flag) -> str:
    value = flag.default
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return ",".join(map(str, value)) or "''"
    if isinstance(value, str):
        return value or "''"
    return f"{value:g}" if isinstance(value, float) else str(value)


def _flag_text(flag: flags.Flag) -> str:
    boolean = isinstance(flag.parser, flags.BooleanParser)
    name = f"--[no]{flag.name}" if boolean else f"--{flag.name}"
    if flag.short_name:
        name = f"-{flag.short_name}, {name}"
    if flag.default is None:
        head = f"  {name} (required)" if _is_required(flag) else f"  {name}"
    else:
        head = f"  {name} (default: {_default_text(flag)})"
    body = textwrap.fill(
        " ".join((flag.help or "").split()),
        WIDTH,
        initial_indent="      ",
        subsequent_indent="      ",
        break_on_hyphens=False,
    )
    return f"{head}\n{body}"


def _is_required(flag: flags.Flag) -> bool:
    return any("must have a value other than None" in (v.message or "") for v in flag.validators)


def help_text(
    command: Command, flag_values: flags.FlagValues, own: Sequence[str], full: bool = False
) -> str:
    """The text ``--help`` prints (``full``: with every other defined flag after it)."""
    parts = [
        f"usage: {command.usage}",
        textwrap.fill(" ".join(command.description.split()), WIDTH, break_on_hyphens=False),
        "flags:\n" + "\n".join(_flag_text(flag_values[n]) for n in own),
    ]
    epilog = command.epilog() if callable(command.epilog) else command.epilog
    if epilog:
        parts.append(epilog.rstrip("\n"))
    if full:
        others = [
            flag_values[n]
            for n in flag_values
            if n not in own and flag_values[n].name == n and "." not in n
        ]
        parts.append(
            "other flags (absl, logging):\n"
            + "\n".join(_flag_text(f) for f in sorted(others, key=lambda f: f.name))
        )
    else:
        parts.append(f"{command.name} --helpfull also lists absl's own flags (logging, ...).")
    return "\n\n".join(parts) + "\n"


def _suggest(name: str, flag_values: flags.FlagValues, own: Sequence[str]) -> str | None:
    """The command's flag closest to a misspelled ``name`` (``--noNAME`` of a boolean too)."""
    candidates = list(own) + [
        f"no{n}" for n in own if isinstance(flag_values[n].parser, flags.BooleanParser)
    ]
    match = difflib.get_close_matches(name, candidates, n=1, cutoff=0.6)
    if not match:
        others = [n for n in flag_values if n not in own and "." not in n]
        match = difflib.get_close_matches(name, others, n=1, cutoff=0.8)
    return match[0] if match else None


_KINDS = {
    flags.IntegerParser: "an integer",
    flags.FloatParser: "a number",
    flags.BooleanParser: "true or false",
}


def error_message(
    error: Exception, command: Command, flag_values: flags.FlagValues, own: Sequence[str]
) -> str:
    """One line for a flag-parsing error of absl (or any exception a flag's parser raised)."""
    see = f"see {command.name} --help"
    if isinstance(error, flags.UnrecognizedFlagError):
        name = error.flagname
        hint = _suggest(name, flag_values, own)
        dash = (
            "-"
            if (error.flagvalue or "").startswith("-") and not error.flagvalue.startswith("--")
            else "--"
        )
        text = f"unknown flag {dash}{name}"
        return f"{text} (did you mean --{hint}?); {see}" if hint else f"{text}; {see}"
    text = " ".join(str(error).split()) or type(error).__name__
    m = re.match(r"flag --([\w.]+)=(.*?): (.*)$", text)
    if m:
        name, value, why = m.groups()
        if "must have a value other than None" in why:
            return f"--{name} is required; {see}"
        flag = flag_values[name] if name in flag_values else None
        kind = _KINDS.get(type(flag.parser)) if flag is not None else None
        if kind and re.search(r"invalid literal|could not convert|Non-boolean", why):
            why = f"expected {kind}"
        return f"--{name}={value}: {why}"
    return text


def die(command: str, message: str, code: int = EXIT_USAGE, *, own_line: bool = False):
    """Write ``<command>: error: <message>`` as one line on stderr and exit at once with
    ``code``, without waiting for any thread. ``own_line``: start with a newline (after a
    progress bar). Nothing to say when stderr is gone (a detached job): the exit code is the
    message."""
    logging.shutdown()
    with contextlib.suppress(OSError, ValueError):
        sys.stdout.flush()
    with contextlib.suppress(OSError, ValueError):
        sys.stderr.flush()
    first = (str(message).strip().splitlines() or [""])[0]
    with contextlib.suppress(OSError):
        os.write(2, f"{chr(10) if own_line else ''}{command}: error: {first}\n".encode())
    os._exit(code)


def parse(
    command: Command, argv: Sequence[str], flag_values: flags.FlagValues, own: Sequence[str]
) -> list[str]:
    """Parse ``argv`` into ``flag_values``: print the help and exit 0 when it asks for help; one
    line and exit 2 (:func:`die`) for a bad command line. Returns the arguments left."""
    wanted = help_requested(argv)
    if wanted:
        sys.stdout.write(help_text(command, flag_values, own, full=wanted == "full"))
        sys.stdout.flush()
        sys.exit(0)
    try:
        rest = flag_values(list(argv))
    except Exception as e:  # noqa: BLE001 - flags.Error, or a flag's own parser (a config file)
        die(command.name, error_message(e, command, flag_values, own))
    if len(rest) > 1 and not command.positional:
        die(command.name, f"unexpected argument {rest[1]!r}; see {command.name} --help")
    return rest


def run(
    command: Command,
    main: Callable[[list[str]], object],
    define_flags: Callable[[], None],
    *,
    argv: Sequence[str] | None = None,
    flag_values: flags.FlagValues = flags.FLAGS,
    after_parse: Callable[[], None] | None = None,
) -> None:
    """``define_flags()``, then ``absl.app.run(main)`` with :func:`parse` as its flags parser
    (``after_parse()`` runs after a successful parse) and ``app.UsageError`` from ``main`` as a
    one-line error (exit 2)."""
    own = define(define_flags, flag_values)

    def parser(args: list[str]) -> list[str]:
        rest = parse(command, args, flag_values, own)
        if after_parse is not None:
            after_parse()
        return rest

    def guarded(args: list[str]):
        try:
            return main(args)
        except app.UsageError as e:
            die(command.name, str(e))

    app.run(guarded, argv=list(sys.argv if argv is None else argv), flags_parser=parser)
