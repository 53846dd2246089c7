"""Code no one here wrote, against ``labrig sim serve``: pymeasure's own hardware tests
for the 2400, and its ``Keithley2400Legacy`` API.

pymeasure ships ``tests/instruments/keithley/test_keithley2400_with_device.py`` in its
source distribution, meant for a real 2400 (``pytest --device-address RESOURCE``).  The
test fetches the sdist of the *installed* pymeasure with pip (one call; nothing of it is
kept in this repository), runs that file unmodified in a pytest subprocess, and points
it at the served 2400 with only a shim: pymeasure's own ``--device-address`` option for
the resource, and a conftest beside the file that wraps the address in a ``VISAAdapter``
with the terminations ``labrig sim serve`` prints (pyvisa's socket sessions have none).
Every test in the file must pass.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tarfile
import warnings
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path

import pytest

from labrig.simulators.served import Served, sim_serve

DEVICE_TEST = "tests/instruments/keithley/test_keithley2400_with_device.py"
PYMEASURE_CONFTEST = "tests/conftest.py"  # defines --device-address / connected_device_address

# the termination shim: pymeasure's fixture gives the address; this adds the terminations
SHIM = """\
import pytest
from pymeasure.adapters import VISAAdapter


@pytest.fixture(scope="session")
def connected_device_address(connected_device_address):
    return VISAAdapter(connected_device_address, visa_library="@py", {terminations})
"""


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    """``labrig sim serve`` in its own process."""
    with sim_serve() as served:
        yield served


@pytest.fixture(scope="module")
def sdist_download(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Path, subprocess.Popen]]:
    """Start fetching the installed pymeasure's sdist (one pip call) in the background,
    so it overlaps the start of ``labrig sim serve``."""
    where = tmp_path_factory.mktemp("pymeasure_sdist")
    pip = subprocess.Popen(
        [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary"]
        + [":all:", f"pymeasure=={version('pymeasure')}", "--dest", str(where)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield where, pip
    finally:
        if pip.poll() is None:
            pip.kill()
        pip.communicate()


@pytest.fixture(scope="module")
def pymeasure_tests(sdist_download: tuple[Path, subprocess.Popen]) -> Path:
    """The sdist fetched, with pymeasure's device test (and its conftest) extracted."""
    where, pip = sdist_download
    wanted = version("pymeasure")
    _, stderr = pip.communicate(timeout=240)
    assert pip.returncode == 0, f"pip could not fetch the pymeasure {wanted} sdist:\n{stderr}"
    (sdist,) = where.glob(f"pymeasure-{wanted}.tar.gz")
    root = f"pymeasure-{wanted}/"
    with tarfile.open(sdist) as tar:
        members = [tar.getmember(root + DEVICE_TEST), tar.getmember(root + PYMEASURE_CONFTEST)]
        tar.extractall(where, members=members, filter="data")
    return where / root


def test_pymeasures_own_2400_device_tests_pass(
    sdist_download: object, served: Served, pymeasure_tests: Path
) -> None:
    resource, terminations = served.resources["smu"], served.terminations["smu"]
    assert terminations == "read_termination='\\n', write_termination='\\n'"
    test_file = pymeasure_tests / DEVICE_TEST
    (test_file.parent / "conftest.py").write_text(SHIM.format(terminations=terminations))
    (pymeasure_tests / "pytest.ini").write_text("[pytest]\n")  # not this repository's config
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist"]
        + ["--device-address", resource, str(test_file.relative_to(pymeasure_tests))],
        cwd=pymeasure_tests,
        capture_output=True,
        text=True,
        timeout=300,
    )
    summary = run.stdout.strip().splitlines()[-1] if run.stdout.strip() else run.stderr
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    passed = re.search(r"(\d+) passed", summary)
    assert passed and int(passed.group(1)) >= 70, summary  # 75 in pymeasure 0.16
    assert not re.search(r"failed|error|skipped", summary), summary


def test_keithley2400_legacy_api(served: Served) -> None:
    """pymeasure's legacy 2400 class, for the calls the real 2400 accepts."""
    from pymeasure.adapters import VISAAdapter
    from pymeasure.instruments.keithley import Keithley2400Legacy

    resource = served.resources["smu"]
    adapter = VISAAdapter(resource, visa_library="@py", read_termination="\n")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # "a legacy version ... kept for"
        smu = Keithley2400Legacy(adapter)
    try:
        smu.reset()  # status:queue:clear;*RST;:stat:pres;:*CLS;
        assert "MODEL 2400" in smu.id
        assert smu.options == "0"  # *OPT?: no options installed
        assert smu.trigger_delay == 0.0  # :TRIG:SEQ:DEL?
        smu.trigger_delay = 0.002
        assert smu.trigger_delay == 0.002
        smu.trigger_delay = 0.0
        assert smu.line_frequency == 50 and smu.line_frequency_auto is False
        smu.line_frequency_auto = True
        assert smu.line_frequency_auto is True
        assert smu.wires == 2
        smu.use_rear_terminals()
        smu.use_front_terminals()

        # source V, measure I on the simulated LED: forward current at 2.6 V
        smu.apply_voltage(compliance_current=0.01)
        smu.measure_current()
        smu.source_voltage = 2.6
        smu.enable_source()
        assert smu.source_enabled is True
        assert smu.current > 1e-6  # :FORM:ELEM CURR: the current alone

        # the buffer: config, start, wait on the status byte, statistics
        smu.config_buffer(points=8, delay=0)
        smu.start_buffer()
        smu.wait_for_buffer(timeout=20, interval=0.05)
        currents = smu.buffer_data  # :FORM:ELEM CURR
        assert currents.shape == (8,) and currents.min() > 1e-6
        assert smu.mean_current == pytest.approx(currents.mean(), rel=1e-5)
        assert smu.max_current == pytest.approx(currents.max(), rel=1e-5)
        assert smu.min_current == pytest.approx(currents.min(), rel=1e-5)
        assert smu.std_current == pytest.approx(currents.std(ddof=1), rel=1e-4, abs=1e-12)
        assert smu.mean_voltage == pytest.approx(2.6)

        smu.ramp_to_voltage(0.0, steps=3, pause=0)
        smu.shutdown()
        assert smu.source_enabled is False
        smu.check_errors()  # raises on any error the simulated 2400 filed
        assert smu.status() == '0,"No error"'
    finally:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            smu.write(":OUTP OFF")
            adapter.close()
