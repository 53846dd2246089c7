"""labrig.deferred: pandas stays unloaded through a run's imports, and works when used."""

from __future__ import annotations

import subprocess
import sys

from labrig import deferred

SCRIPT = """
import sys
import labrig.procedures.lifetime, labrig.procedures.jvl, labrig.runner, labrig.store
from labrig.deferred import loaded
print(loaded("pandas"), "pandas.core.frame" in sys.modules)
import pandas as pd
print(loaded("pandas"))
frame = pd.DataFrame({"a": [1.5, 2.5]})
print(loaded("pandas"), float(frame["a"].sum()), type(sys.modules["pandas"]).__name__)
from pymeasure.experiment import Results
print(Results.__name__)
"""


def test_a_run_imports_no_pandas_and_pandas_still_works_when_used() -> None:
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True
    ).stdout.split("\n")
    assert out[:4] == ["False False", "False", "True 4.0 module", "Results"]


def test_modules_already_imported_or_missing_are_left_alone() -> None:
    before = sys.modules["types"]
    deferred.defer("types")
    assert sys.modules["types"] is before and deferred.loaded("types")
    deferred.defer("no_such_module_anywhere")
    assert "no_such_module_anywhere" not in sys.modules


def test_a_deferred_module_runs_only_when_an_attribute_is_used(tmp_path, monkeypatch) -> None:
    name = "labrig_deferred_probe"
    (tmp_path / f"{name}.py").write_text("import sys\nsys.probe_ran = True\nvalue = 42\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delattr(sys, "probe_ran", raising=False)
    try:
        deferred.defer(name)
        import labrig_deferred_probe as probe  # type: ignore[import-not-found]

        assert not hasattr(sys, "probe_ran") and not deferred.loaded(name)
        assert probe.value == 42
        assert sys.probe_ran and deferred.loaded(name)  # type: ignore[attr-defined]
        assert "value" in vars(probe)  # later reads skip the forwarding
    finally:
        sys.modules.pop(name, None)
        monkeypatch.delattr(sys, "probe_ran", raising=False)
