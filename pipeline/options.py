"""CLI flags generated from the config dataclasses, so each threshold has one
home (its dataclass default) and is a flag without being written twice."""
from __future__ import annotations

import argparse
import dataclasses
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
