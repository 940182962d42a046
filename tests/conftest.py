import os

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")


import pytest


@pytest.fixture(scope="session")
def bundled_outputs(tmp_path_factory):
    """m3w, pairs (align/ltip) and videos outputs of the jobs' CLIs on the bundled
    samples, with --keep-dropped (tests/helpers/outputs.py)."""
    from tests.helpers.outputs import build_outputs

    return build_outputs(tmp_path_factory.mktemp("bundled"))
