"""Race many threads on a first call, in a fresh interpreter (nothing loaded yet)."""
from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

_RACE = r"""
import importlib, sys, threading
module, attr, field = sys.argv[1:4]
call = getattr(importlib.import_module(module), attr)
barrier, got = threading.Barrier(16), []
def first_call():
    barrier.wait()
    try:
        got.append(getattr(call(), field).__name__ if field else call().__name__)
    except Exception as e:
        got.append(repr(e))
threads = [threading.Thread(target=first_call) for _ in range(16)]
[t.start() for t in threads]
[t.join() for t in threads]
print(sorted(set(got)))
"""


def race_first_call(module: str, attr: str, field: str = "") -> list[str]:
    """What 16 threads released together got from ``module.attr()`` (the ``__name__``
    of the result, or of its ``field``), de-duplicated: one name when none raced badly."""
    out = subprocess.run([sys.executable, "-c", _RACE, module, attr, field], cwd=ROOT,
                         capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}).stdout
    return ast.literal_eval(out.splitlines()[-1])
