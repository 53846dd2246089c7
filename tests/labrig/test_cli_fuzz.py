"""Bad-input fuzzing of the command line's parameter parsing.

``labrig run NAME --set name=value`` goes through ``labrig.parameters.parse_settings`` and
then the procedure's ``validate(config)``, both before any instrument is opened.  Whatever
the text, the outcome is values that validate, or a ``UserInputError`` with a message
(exit status 2) -- never another exception.  A few real ``labrig run`` processes check
the end of the chain: exit status 2, a ``labrig: error:`` line, no traceback, no file.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from labrig import registry
from labrig.config import load_config
from labrig.errors import ParameterError, UserInputError
from labrig.parameters import parameter_objects, parse_settings

PROCEDURES = [m.name for m in registry.measurements()]


def load(name: str) -> type:
    return registry.measurement(name).procedure_class()


FUZZ = settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

values = st.one_of(
    st.text(max_size=12),
    st.sampled_from(
        ["nan", "-nan", "inf", "-inf", "1e400", "-1e400", "0", "-0", "1e-320", "9" * 5000,
         "true", "no", "", " ", "1,2,3", "nan,1", "1;;2", "0x10", "1_000", "５", "all", "0,0"]
    ),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers().map(str),
)  # fmt: skip


@st.composite
def settings_for(draw, name: str) -> list[str]:
    params = list(parameter_objects(load(name)))
    items = []
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        key = draw(st.one_of(st.sampled_from(params), st.text(max_size=8)))
        sep = draw(st.sampled_from(["=", "=", "=", "", " = ", "=="]))
        value = draw(st.sampled_from(getattr(load(name), key).choices)) if (
            key in params and hasattr(getattr(load(name), key), "choices")
            and draw(st.booleans())
        ) else draw(values)  # fmt: skip
        items.append(f"{key}{sep}{value}")
    return items


@pytest.fixture(scope="module")
def configs():
    return {name: load_config(registry.measurement(name).simulated_config) for name in PROCEDURES}


@FUZZ
@given(data=st.data())
@pytest.mark.parametrize("name", PROCEDURES)
def test_settings_parse_and_validate_or_say_why(name: str, data, configs) -> None:
    items = data.draw(settings_for(name))
    cls = load(name)
    try:
        parsed = parse_settings(cls, items)
    except ParameterError as exc:
        assert str(exc).strip() and "Traceback" not in str(exc)
        return
    params = parameter_objects(cls)
    assert set(parsed) <= set(params)
    for key, value in parsed.items():
        if isinstance(value, float):
            assert not math.isnan(value), f"{key}=nan accepted"
    proc = cls()
    proc.set_parameters(parsed)
    try:
        proc.validate(configs[name])  # what `labrig run` does before opening anything
    except UserInputError as exc:
        assert str(exc).strip()


# ----------------------------------------------------------------------------- real runs
BAD_RUNS = [
    ("jvl", ["stop_voltage=nan"], "not a number"),
    ("jvl", ["no_such_parameter=1"], "no such parameter"),
    ("jvl", ["spectra=sometimes"], "allowed: one of"),
    ("jvl", ["step_voltage"], "expected name=value"),
    ("jvl", ["stop_voltage=99"], "max_voltage_v"),
    ("solar-jv", ["step_voltage=0.3"], "step_voltage"),
]


def test_bad_settings_on_the_command_line_exit_2_without_traceback(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    runs = []
    for name, items, _ in BAD_RUNS:
        out = tmp_path / f"out-{len(runs)}"
        args = [sys.executable, "-m", "labrig", "run", name, "--simulate", "-o", str(out)]
        for item in items:
            args += ["--set", item]
        runs.append(
            (out, subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env))
        )
    for (out, proc), (name, items, expected) in zip(runs, BAD_RUNS, strict=True):
        stdout, stderr = (b.decode() for b in proc.communicate(timeout=120))
        assert proc.returncode == 2, (name, items, stdout, stderr)
        assert "Traceback" not in stderr, stderr
        assert stderr.startswith("labrig: error:"), stderr
        assert expected in stderr, stderr
        assert not out.exists() or not list(out.iterdir()), "a file was written"


# ----------------------------------------------------------------------------- scripts, GUI
@pytest.mark.parametrize("name", PROCEDURES)
def test_nan_parameters_are_refused_before_anything_opens(name: str, configs, tmp_path) -> None:
    """Set from a script or the GUI (not through ``--set``), a NaN float parameter still
    gets a one-line ParameterError from the runner, and no file or instrument is touched."""
    from pymeasure.experiment import FloatParameter

    from labrig.runner import run_procedure

    cls = load(name)
    floats = [p for p, obj in parameter_objects(cls).items() if isinstance(obj, FloatParameter)]
    assert floats
    for pname in floats:
        proc = cls()
        proc.set_parameters({pname: math.nan})
        with pytest.raises(ParameterError, match=f"{pname}=nan"):
            run_procedure(proc, configs[name], output_dir=tmp_path / "runs", progress=False)
    assert not (tmp_path / "runs").exists()
