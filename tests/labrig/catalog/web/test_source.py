"""The web view's way to the runs: filters checked and said in the catalogue's own search
syntax, and a run's figures coming back from the catalogue's metadata as the file has
them (JSON null back to NaN, a group's figures under its name)."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest

pytest.importorskip("tiled")

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from report_runs import shared_run  # noqa: E402

from labrig.catalog.web.source import BadRequest, Filters, analysis_from_metadata  # noqa: E402
from labrig.store import load_run  # noqa: E402


def test_filters_become_one_catalogue_search():
    filters = Filters.parse(
        {"procedure": "jvl", "status": "finished", "sample": "NSA 0.6", "figure": "peak_eqe",
         "above": "20", "search": "operator=ana"}
    )  # fmt: skip
    assert filters.text() == (
        "operator=ana procedure=jvl status=finished sample~'NSA 0.6' peak_eqe>20.0"
    )
    assert len(filters.queries()) == 5
    assert Filters.parse({}).queries() == []


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"above": "nan", "figure": "peak_eqe"}, "above 'nan' is not a finite number"),
        ({"figure": "../x"}, "figure '../x': a figure name is letters, digits and _"),
        ({"page": "two"}, "page 'two' is not a whole number"),
    ],
)
def test_a_filter_the_list_cannot_take_is_refused_in_one_line(params, message):
    with pytest.raises(BadRequest) as caught:
        Filters.parse(params)
    assert str(caught.value) == message


def test_figures_come_back_from_the_catalogues_metadata(tmp_path_factory):
    from labrig.catalog.metadata import run_metadata

    loaded = load_run(shared_run("lifetime", tmp_path_factory))
    metadata = json.loads(json.dumps(run_metadata(loaded)))  # as the catalogue stores it
    back = analysis_from_metadata(metadata)
    expected = {g: f for g, f in loaded.run.analysis.items() if f}
    assert set(back) == set(expected) | {None}
    for group, items in expected.items():
        assert set(back[group]) == set(items), group
        for name, (value, units) in items.items():
            got, got_units = back[group][name]
            assert got_units == units, (group, name)
            if isinstance(value, float) and math.isnan(value):
                assert math.isnan(got), (group, name)
            else:
                assert got == (value.tolist() if hasattr(value, "tolist") else value)
