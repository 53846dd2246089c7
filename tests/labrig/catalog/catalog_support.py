"""What the catalogue tests share besides fixtures (conftest.py)."""

from __future__ import annotations

import pytest

#: the bad files in the served directory, by their catalogue key
CORRUPT, TRUNCATED = "corrupt", "truncated"


def poll(what: str, check, timeout_s: float = 60.0, every_s: float = 0.1):
    """``check()``'s first truthy value, asked until ``timeout_s`` (then the test fails)."""
    import time

    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(every_s)


def assert_same_data(node, path) -> None:
    """The catalogue's node holds the run file's data: every data group's columns (in
    order, NaN where the file has NaN) with their units, and the spectra."""
    import numpy as np

    from labrig.store import load_run

    local = load_run(path)
    for group in local.run.groups:
        served = node[group]
        assert list(served) == list(local.table(group))
        for name, values in local.table(group).items():
            column = served[name]
            np.testing.assert_array_equal(column.read(), values.astype(column.dtype))
            assert column.metadata["units"] == local.units(name, group)
    if local.run.spectra is not None and len(local.run.spectra.counts):
        np.testing.assert_array_equal(node["spectra"].read(), local.run.spectra.counts)
        np.testing.assert_array_equal(node["wavelength_nm"].read(), local.run.spectra.wavelength_nm)
    assert dict(node.metadata)["rows"] == {g: local.rows(g) for g in local.run.groups}
