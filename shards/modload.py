"""Load one module file of an installed package without running the package's
``__init__`` (shards.writer: webdataset's writer.py without torch;
pipeline.images: img2dataset's resizer.py without wandb/albumentations).

importlib has no call for "this file, not its package", so this is the one place
that does it.  Beam runs bundles on several threads of one process, and their first
calls race: the module is registered in ``sys.modules`` before it has executed
(so that its own imports of siblings resolve), so every load runs under one lock,
and no thread ever gets a half-executed module.
"""
from __future__ import annotations

import importlib.util
import os
import sys
import threading
from types import ModuleType

_LOCK = threading.RLock()


def load_module_file(name: str, package: str, filename: str,
                     package_as: str | None = None) -> ModuleType:
    """Module ``name`` executed from ``filename`` inside the installed top-level
    ``package``'s folder.  ``package_as``: also register a bare package (its
    ``__init__`` not run) under that name, for files with relative imports
    (``name`` must then be ``package_as + ".<module>"``)."""
    with _LOCK:
        if name in sys.modules:
            return sys.modules[name]
        found = importlib.util.find_spec(package)  # a top-level name: finds, runs nothing
        pkg_dir = os.path.dirname(found.origin)
        if package_as and package_as not in sys.modules:
            sys.modules[package_as] = importlib.util.module_from_spec(
                importlib.util.spec_from_file_location(
                    package_as, found.origin, submodule_search_locations=[pkg_dir]))
        spec = importlib.util.spec_from_file_location(name, os.path.join(pkg_dir, filename))
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        try:
            spec.loader.exec_module(mod)
        except BaseException:
            del sys.modules[name]
            raise
        return mod
