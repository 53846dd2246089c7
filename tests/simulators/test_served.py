"""``sim_serve``: labrig sim serve in a child process, read and stopped."""

from __future__ import annotations

import os

import pytest
import pyvisa

from labrig.simulators.served import sim_serve


def test_serves_the_roles_with_their_terminations_and_stops_the_child() -> None:
    with sim_serve() as served:
        assert set(served.resources) >= {"smu", "photometer"}
        assert served.terminations["smu"] == "read_termination='\\n', write_termination='\\n'"
        rm = pyvisa.ResourceManager("@py")
        inst = rm.open_resource(
            served.resources["photometer"], read_termination="\n", write_termination="\n"
        )
        assert inst.query("*IDN?").startswith("KEITHLEY INSTRUMENTS INC.,MODEL 6485")
        inst.close()
        rm.close()
    with pytest.raises(ProcessLookupError):
        os.kill(served.pid, 0)  # stopped and reaped


def test_a_config_that_serves_nothing_is_an_error(tmp_path) -> None:
    with pytest.raises(RuntimeError, match="labrig sim serve did not serve smu"):
        with sim_serve(tmp_path / "missing.yaml"):
            pass
