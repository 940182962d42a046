import pytest


@pytest.fixture(scope="session")
def m3w_reference(tmp_path_factory):
    """(sample WARC, output folder) of one m3w CLI run with REFERENCE_ARGS
    (tests/helpers/outputs.py), made once for the tests that compare another
    run of the same job on the same input to it byte for byte (test_dask:
    DaskRunner; test_m3w: killed and rerun). Read-only: a test writes its own
    runs beside it, never into it."""
    from tests.helpers.outputs import build_reference

    return build_reference(tmp_path_factory.mktemp("m3w_reference"))
