"""What every command line of the project shares: argparse with one-line errors.

``PROG: error: WHAT`` on stderr and exit status 2 (argparse's convention),
without the usage dump (the job parsers list ~80 flags); an unknown option is
named with the closest defined one (difflib). Only the standard library is
imported here, so a command can parse and check its arguments before it
imports Beam, torch or transformers (``--help`` and argument errors in well
under 2 s).
"""
from __future__ import annotations

import argparse
import difflib
import sys


class Parser(argparse.ArgumentParser):
    """argparse.ArgumentParser with one-line errors, no abbreviated options, and
    unknown options rejected with the closest name (:func:`unknown_option`)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)  # a typo must not silently pick a flag
        super().__init__(*args, **kwargs)

    def error(self, message: str):  # argparse's hook: every parse error comes here
        fail(self.prog, message, status=2)

    def option_names(self) -> list[str]:
        return [s for a in self._actions for s in a.option_strings]

    def parse_args(self, args=None, namespace=None):
        self.reject_unknown(sys.argv[1:] if args is None else args)
        ns, rest = self.parse_known_args(args, namespace)
        if rest:
            self.error(unknown_option(rest, self.option_names()))
        return ns

    def reject_unknown(self, argv, also_known=()) -> None:
        """An option nobody defines is the error, before argparse's complaint
        about a missing required one (``--frob`` is the mistake, not ``--out``)."""
        known = set(self.option_names()) | set(also_known)
        for arg in argv:
            if arg == "--":
                break
            name = arg.split("=", 1)[0]
            if name.startswith("--") and name not in known:
                self.error(unknown_option([name], known))


def fail(prog: str, message: str, status: int = 2):
    """Print ``PROG: error: MESSAGE`` (one line) and exit with ``status``."""
    one_line = " ".join(str(message).split())
    sys.stderr.write(f"{prog}: error: {one_line}\n")
    sys.exit(status)


def warn(prog: str, message: str) -> None:
    sys.stderr.write(f"{prog}: warning: {' '.join(str(message).split())}\n")


def closest(name: str, known, cutoff: float = 0.6) -> str | None:
    near = difflib.get_close_matches(name, list(known), n=1, cutoff=cutoff)
    return near[0] if near else None


def closest_option(name: str, known) -> str | None:
    """The defined option a mistyped one most likely meant: the same but for ``_``/``-``
    (``--samples_per_shard``), else the closest spelling."""
    known = list(known)
    norm = {k.replace("_", "-").lower(): k for k in known}
    return norm.get(name.replace("_", "-").lower()) or closest(name, known, cutoff=0.7)


def unknown_option(rest: list[str], known) -> str:
    """The message for the first argument nobody defines: ``unknown option
    --frobnicate`` (+ ``; did you mean --X?``), or ``unexpected argument 'x'``."""
    flag = next((a for a in rest if a.startswith("-") and a != "-"), None)
    if flag is None:
        return f"unexpected argument {rest[0]!r}"
    name = flag.split("=", 1)[0]
    near = closest_option(name, known)
    return f"unknown option {name}" + (f"; did you mean {near}?" if near else "")
