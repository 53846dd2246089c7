"""labrig.deferred: pandas and the pymeasure packages labrig takes single modules from stay
unloaded through a run's imports, and work when used."""

from __future__ import annotations

import os
import subprocess
import sys

from labrig import deferred

SCRIPT = """
import sys
import labrig.procedures.lifetime, labrig.procedures.jvl, labrig.runner, labrig.store
from labrig.deferred import loaded
print(loaded("pandas"), "pandas.core.frame" in sys.modules, loaded("pymeasure.experiment"))
import pandas as pd
print(loaded("pandas"))
frame = pd.DataFrame({"a": [1.5, 2.5]})
print(loaded("pandas"), float(frame["a"].sum()), type(sys.modules["pandas"]).__name__)
from pymeasure.experiment import Results, Procedure
import labrig.procedure
print(Results.__name__, Procedure is labrig.procedure.Procedure)
"""


def test_a_run_imports_no_pandas_and_pandas_still_works_when_used() -> None:
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True
    ).stdout.split("\n")
    # nor pymeasure.experiment's package (Worker, Results, Experiment: IPython, zmq)
    assert out[:4] == ["False False False", "False", "True 4.0 module", "Results True"]


def test_modules_already_imported_or_missing_are_left_alone() -> None:
    before = sys.modules["types"]
    deferred.defer("types")
    assert sys.modules["types"] is before and deferred.loaded("types")
    deferred.defer("no_such_module_anywhere")
    assert "no_such_module_anywhere" not in sys.modules


PROBE = """
import inspect, sys
from labrig import deferred
deferred.defer("labrig_deferred_probe")
import labrig_deferred_probe as probe
inspect.getmodule(inspect)  # scans sys.modules, asking each module for __file__
print(hasattr(sys, "probe_ran"), deferred.loaded("labrig_deferred_probe"))
print(probe.value, hasattr(sys, "probe_ran"), deferred.loaded("labrig_deferred_probe"))
print("value" in vars(probe))
"""


def test_a_deferred_module_runs_only_when_an_attribute_is_used(tmp_path) -> None:
    (tmp_path / "labrig_deferred_probe.py").write_text(
        "import sys\nsys.probe_ran = True\nvalue = 42\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", PROBE],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(tmp_path)},
    ).stdout.split("\n")
    # unloaded through import and a scan of sys.modules; loaded by its first attribute,
    # after which the stand-in holds the real names
    assert out[:3] == ["False False", "42 True True", "True"]


KEITHLEY = """
import sys
import labrig.drivers.keithley2400 as ours
from labrig.deferred import loaded
print(loaded("pymeasure.instruments.keithley"), sorted(
    m.rsplit(".", 1)[-1] for m in sys.modules if m.startswith("pymeasure.instruments.keithley.")
))
from pymeasure.instruments.keithley import Keithley2281S, Keithley2400
print(loaded("pymeasure.instruments.keithley"), Keithley2400 is ours.PymeasureKeithley2400)
print(Keithley2281S.__name__)
"""


def test_the_2400_driver_loads_one_keithley_module_and_the_package_works_when_used() -> None:
    out = subprocess.run(
        [sys.executable, "-c", KEITHLEY], capture_output=True, text=True, check=True
    ).stdout.split("\n")
    # not the eighteen drivers of pymeasure.instruments.keithley (the 2281S's pandas)
    assert out[0] == "False ['buffer', 'keithley2400']"
    assert out[1:3] == ["True True", "Keithley2281S"]
