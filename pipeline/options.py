"""CLI flags generated from the config dataclasses, so each threshold has one
home (its dataclass default) and is a flag without being written twice."""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import typing


def _flag(prefix: str, name: str) -> str:
    if prefix and not name.startswith(prefix + "_"):
        name = f"{prefix}_{name}"  # image_size under "image" stays --image-size
    return "--" + name.replace("_", "-")


def add_dataclass_flags(parser: argparse.ArgumentParser, cls, prefix: str = "",
                        title: str | None = None, skip: tuple[str, ...] = ()) -> None:
    group = parser.add_argument_group(title or cls.__name__)
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.name.startswith("_") or f.name in skip:
            continue
        hint = hints[f.name]
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        dest = f"{prefix}_{f.name}" if prefix else f.name
        flag = _flag(prefix, f.name)
        if hint is bool:
            group.add_argument(flag, dest=dest, action=argparse.BooleanOptionalAction,
                               default=default, help=f"(default: {default})")
        elif typing.get_origin(hint) is tuple:
            group.add_argument(flag, dest=dest, default=",".join(default),
                               help=f"comma-separated (default: {','.join(default) or 'none'})")
        else:
            typ = {int: int, float: float, str: str}.get(hint, str)
            group.add_argument(flag, dest=dest, type=typ, default=default,
                               help=f"(default: {default})")


def dataclass_from_args(cls, args: argparse.Namespace, prefix: str = ""):
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for f in dataclasses.fields(cls):
        dest = f"{prefix}_{f.name}" if prefix else f.name
        if not hasattr(args, dest):
            continue
        v = getattr(args, dest)
        if typing.get_origin(hints[f.name]) is tuple and isinstance(v, str):
            v = tuple(x.strip() for x in v.split(",") if x.strip())
        kwargs[f.name] = v
    return cls(**kwargs)


def as_json(obj) -> dict:
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(obj).items()}


# ---------------------------------------------------------------- without importing
# The jobs parse and check their flags before they import Beam (whose import
# alone takes seconds): the config dataclasses that live in modules importing
# Beam, cv2 or torch are read from their source instead (their fields,
# annotations and literal defaults; tests/pipeline/test_cli.py checks the copy
# equals the class), and Beam's own flags come from a table written from the
# pinned Beam (beam_flags.json, `python -m pipeline.options --write-snapshots`), as are the
# language identifier's labels (langid_labels.json).

_HINTS = {"int": int, "float": float, "str": str, "bool": bool, "tuple": tuple, "None": None}


def _literal(node: "ast.AST"):
    """A literal, or constant arithmetic on literals (``4096 * 4096``, ``20 << 20``)."""
    import ast
    import operator

    ops = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
           ast.LShift: operator.lshift, ast.Pow: operator.pow, ast.FloorDiv: operator.floordiv}
    if isinstance(node, ast.BinOp) and type(node.op) in ops:
        return ops[type(node.op)](_literal(node.left), _literal(node.right))
    return ast.literal_eval(node)


def _module_tree(module: str):
    import ast
    import importlib.util

    spec = importlib.util.find_spec(module)  # imports the parent package only
    with open(spec.origin, encoding="utf-8") as f:
        return ast.parse(f.read(), spec.origin)


def light_dataclass(module: str, name: str):
    """Dataclass ``module.name`` rebuilt from the module's source, without importing
    the module: same field names, types and defaults (methods left out)."""
    import ast

    tree = _module_tree(module)
    node = next((n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == name), None)
    if node is None:
        raise LookupError(f"{module}: no class {name}")
    fields = []
    for st in node.body:
        if isinstance(st, ast.AnnAssign) and isinstance(st.target, ast.Name):
            hint = eval(ast.unparse(st.annotation), {"__builtins__": {}}, _HINTS)  # names above only
            default = _literal(st.value) if st.value is not None else dataclasses.MISSING
            fields.append((st.target.id, hint, dataclasses.field(default=default)))
    return dataclasses.make_dataclass(name, fields, frozen=True)


def light_constant(module: str, name: str):
    """Module-level ``NAME = literal`` (its value), or ``NAME = Call(k=literal, ...)``
    (the keyword arguments as a dict), read from the source without importing it."""
    import ast

    for st in _module_tree(module).body:
        if (isinstance(st, ast.Assign) and len(st.targets) == 1
                and isinstance(st.targets[0], ast.Name) and st.targets[0].id == name):
            if isinstance(st.value, ast.Call):
                return {k.arg: _literal(k.value) for k in st.value.keywords}
            return _literal(st.value)
    raise LookupError(f"{module}: no constant {name}")


# ---------------------------------------------------------------- Beam's flags

BEAM_FLAGS_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "beam_flags.json")
# Options only a given runner reads (module of the options class -> runner).
_RUNNER_MODULES = {"apache_beam.runners.dask.dask_runner": "DaskRunner", "pipeline.runners": "DaskRunner"}


def beam_flag_table() -> dict:
    """{--flag: {"nargs": argparse nargs (0 = a switch), "runner": name or "*"}} for every
    option Beam's PipelineOptions parse (as ``get_all_options`` builds its parser), plus
    the Dask runners' options. Imports Beam: used to write beam_flags.json, and by its test."""
    from apache_beam.options.pipeline_options import PipelineOptions, _BeamArgumentParser
    import apache_beam.runners.dask.dask_runner  # noqa: F401  (registers DaskOptions)
    import pipeline.runners  # noqa: F401  (registers DaskClusterOptions)

    table = {}
    for cls in {str(c): c for c in PipelineOptions.__subclasses__()}.values():
        parser = _BeamArgumentParser(allow_abbrev=False)
        cls._add_argparse_args(parser)
        runner = _RUNNER_MODULES.get(cls.__module__, "*")
        for action in parser._actions:
            for flag in action.option_strings:
                if flag.startswith("--") and flag != "--help":
                    nargs = action.nargs if action.nargs is not None else 1
                    table[flag] = {"nargs": nargs, "runner": runner}
    return dict(sorted(table.items()))


def write_beam_flags(path: str = BEAM_FLAGS_FILE) -> None:
    from importlib import metadata

    data = {"apache_beam": metadata.version("apache-beam"), "flags": beam_flag_table()}
    with open(path, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=1, sort_keys=True)
        f.write("\n")


def read_beam_flags() -> dict:
    with open(BEAM_FLAGS_FILE, encoding="utf-8") as f:
        return json.load(f)["flags"]


def runner_name(beam_args: list[str]) -> str:
    """The runner these Beam flags choose (DirectRunner when none; dask → DaskRunner)."""
    runner = "DirectRunner"
    for i, a in enumerate(beam_args):
        if a.startswith("--runner="):
            runner = a.split("=", 1)[1]
        elif a == "--runner" and i + 1 < len(beam_args):
            runner = beam_args[i + 1]
    return "DaskRunner" if "dask" in runner.lower() else runner.rsplit(".", 1)[-1]


def unknown_beam_arg(beam_args: list[str], job_flags: list[str]) -> str | None:
    """Why the first of ``beam_args`` (what the job's parser left) is neither a flag
    of Beam for the chosen runner nor the job's, or None when every one is Beam's."""
    from shards.cli import closest_option

    table = read_beam_flags()
    runner = runner_name(beam_args)
    i = 0
    while i < len(beam_args):
        arg = beam_args[i]
        i += 1
        if not arg.startswith("--"):
            return f"unexpected argument {arg!r}"
        name, eq, _ = arg.partition("=")
        entry = table.get(name)
        if entry is None:
            ours = [f for f, e in table.items() if e["runner"] in ("*", runner)]
            near = closest_option(name, list(job_flags) + ours)
            return f"unknown option {name}" + (f"; did you mean {near}?" if near else "")
        if entry["runner"] not in ("*", runner):
            return (f"option {name} is the {entry['runner']}'s; this job runs on {runner} "
                    f"(add --runner={entry['runner']})")
        nargs = entry["nargs"]
        if eq or nargs == 0:
            continue
        if nargs in ("?", "*"):
            while i < len(beam_args) and not beam_args[i].startswith("--"):
                i += 1
                if nargs == "?":
                    break
        else:
            count = 1 if nargs in (1, "+") else int(nargs)
            if i + count > len(beam_args) and count:
                return f"option {name}: expected a value"
            i += count
            if nargs == "+":
                while i < len(beam_args) and not beam_args[i].startswith("--"):
                    i += 1
    return None


# ---------------------------------------------------------------- language codes

LANGID_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "langid_labels.json")


def langid_label_table() -> dict:
    """{code: English name} of every label the language identifier (py3langid's
    model, pipeline.filters.LangId) gives; names from babel's CLDR data where it
    has one. Loads the model: used to write langid_labels.json, and by its test."""
    from babel import Locale

    from pipeline.filters import LangId

    names = Locale("en").languages
    return {c: names.get(c, c) for c in sorted(LangId().load()._model.nb_classes)}


def write_langid_labels(path: str = LANGID_FILE) -> None:
    from importlib import metadata

    data = {"py3langid": metadata.version("py3langid"), "labels": langid_label_table()}
    with open(path, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=1, sort_keys=True, ensure_ascii=False)
        f.write("\n")


def read_langid_labels() -> dict:
    with open(LANGID_FILE, encoding="utf-8") as f:
        return json.load(f)["labels"]


def unknown_language(code: str) -> str | None:
    """None when ``code`` is one of the identifier's labels; else the message
    (``'english' is not a language code of the identifier; did you mean en (English)?``)."""
    from shards.cli import closest

    labels = read_langid_labels()
    if code in labels:
        return None
    by_name = {name.lower(): c for c, name in labels.items()}
    near = by_name.get(code.lower()) or (code.lower() if code.lower() in labels else None)
    if near is None:
        name = closest(code.lower(), by_name)
        near = by_name[name] if name else closest(code, labels)
    return (f"{code!r} is not a language code of the identifier (py3langid: ISO 639 codes)"
            + (f"; did you mean {near} ({labels[near]})?" if near else ""))


if __name__ == "__main__":
    import sys

    if sys.argv[1:] == ["--write-snapshots"]:
        write_beam_flags()
        write_langid_labels()
        print(f"wrote {BEAM_FLAGS_FILE} and {LANGID_FILE}")
    else:
        sys.exit("usage: python -m pipeline.options --write-snapshots")
