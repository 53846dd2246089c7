"""One registry names every driver and measurement: a toy thermometer and a toy
measurement registered in one place (``toy_entries``) are validated, served, opened,
run, listed and drawn by the same code as the shipped ones, and vanish afterwards."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
import pyvisa
import yaml
from click.testing import CliRunner
from pymeasure.experiment import FloatParameter, IntegerParameter
from pymeasure.instruments import Instrument as PymeasureInstrument

from labrig import registry
from labrig.cli import main
from labrig.config import parse_config, shipped_config_dir
from labrig.drivers.visa import VisaTransport, connect_instrument
from labrig.errors import ConfigError, UserInputError
from labrig.interfaces import Instrument, InstrumentIdentity
from labrig.procedure import Column, LabrigProcedure
from labrig.runner import SIGNALS
from labrig.simulators.scpi import SCPIInstrument, nr3

#: the toy device's ambient temperature, K: what the simulated thermometer must read
AMBIENT_K = 310.25


# ----------------------------------------------------------------------- the toy parts
class SimulatedThermometer(SCPIInstrument):
    """Reads the simulated device's temperature (``:MEASure:TEMPerature?``, K)."""

    def __init__(self, physics: Any) -> None:
        self.physics = physics
        super().__init__()

    def idn(self) -> str:
        return "LABRIG,TOY-T1,0001,1.0"

    def _build_tree(self) -> None:
        self.tree.add(":MEASure:TEMPerature", query=lambda _: nr3(self._temperature()))

    def _temperature(self) -> float:
        with self.physics.lock:
            self.physics.update()
            return self.physics.device.temperature_k


def serve_thermometer(request):
    from labrig.simulators.lab import Started
    from labrig.simulators.server import SCPIServer

    thermometer = SimulatedThermometer(request.physics)
    return Started(thermometer, server=SCPIServer(thermometer, clock=request.clock))


class ToyThermometer(VisaTransport, PymeasureInstrument, Instrument):
    temperature = PymeasureInstrument.measurement(":MEAS:TEMP?", "The temperature (K).")

    def __init__(self, adapter: Any) -> None:
        super().__init__(adapter, "toy thermometer", includeSCPI=False)

    def identity(self) -> InstrumentIdentity:
        return self._identity

    def shutdown(self) -> None:
        """Sources nothing."""

    def close(self) -> None:
        self.adapter.close()


def connect_thermometer(resource: str, *, timeout_s: float = 5.0) -> ToyThermometer:
    thermometer, identity = connect_instrument(
        ToyThermometer, resource, timeout_s=timeout_s, models=("TOY-T1",)
    )
    thermometer._identity = identity
    return thermometer


class ToyTemperature(LabrigProcedure):
    NAME = "toy-temperature"
    SUMMARY = "toy: the device temperature, read a few times"
    COLUMNS = (
        Column("time", "s", "time"),
        Column("temperature", "K", "device temperature"),
    )
    SIGNAL, AXIS = "temperature", "time"
    REQUIRED_ROLES = ("thermometer",)

    readings = IntegerParameter("Readings", default=4, minimum=1, maximum=100)
    interval = FloatParameter("Interval", units="s", default=2.0, minimum=0, maximum=60)

    def execute(self) -> None:
        thermometer = self.bench.instruments["thermometer"]
        clock = self.bench.clock
        start, temperatures = clock.time(), []
        for _ in range(self.readings):
            temperatures.append(thermometer.temperature)
            self.emit_row({"time": clock.time() - start, "temperature": temperatures[-1]})
            clock.sleep(self.interval)
        self.emit_analysis(
            {
                "mean_temperature": (float(np.mean(temperatures)), "K"),
                "temperature_spread": (float(np.ptp(temperatures)), "K"),
            }
        )


def toy_entries(simulated_config: Path) -> tuple[registry.Driver, registry.Measurement]:
    """Everything labrig needs to know about the toy: one driver and one measurement."""
    return (
        registry.Driver(
            "toy_thermometer",
            roles=("thermometer",),
            instrument=ToyThermometer,
            connect=connect_thermometer,
            simulator=serve_thermometer,
        ),
        registry.Measurement(
            "toy-temperature",
            procedure=ToyTemperature,
            simulated_config=str(simulated_config),
            headline=("mean_temperature",),
            device_kinds=("led",),
        ),
    )


# ----------------------------------------------------------------------------- fixtures
def _toy_config_data() -> dict:
    data = yaml.safe_load((shipped_config_dir() / "sim.yaml").read_text())
    data["name"] = "toy bench"
    data["instruments"] = {"thermometer": {"driver": "toy_thermometer", "simulated": True}}
    data["device"]["model"] = {"ambient_temperature_k": AMBIENT_K}
    return data


@pytest.fixture
def toy(tmp_path):
    """The toy registered for one test; the signal handlers ``labrig run`` installs are
    put back after it (it runs in this process)."""
    config = tmp_path / "toy.yaml"
    config.write_text(yaml.safe_dump(_toy_config_data()))
    handlers = {sig: signal.getsignal(sig) for sig in SIGNALS}
    with registry.registered(*toy_entries(config)):
        yield config
    for sig, handler in handlers.items():
        signal.signal(sig, handler)
    assert registry.find_measurement("toy-temperature") is None


def _labrig(*args: str):
    return CliRunner().invoke(main, list(args), prog_name="labrig")


# -------------------------------------------------------------------------------- tests
def test_config_validation_knows_the_toy_only_while_registered(toy):
    config = parse_config(_toy_config_data())
    assert config.instruments["thermometer"].driver == "toy_thermometer"
    assert "thermometer" in registry.roles()
    data = _toy_config_data()
    data["simulation"]["faults"] = {"thermometer": [{"kind": "timeout"}]}
    with pytest.raises(ConfigError) as refused:
        parse_config(data)
    assert str(refused.value) == (
        "simulation.faults.thermometer: fault kind 'timeout' cannot happen on the "
        "toy_thermometer; allowed: none"
    )


def test_nothing_of_the_toy_is_left_outside_its_test():
    assert "thermometer" not in registry.roles()
    with pytest.raises(ConfigError, match="unknown role 'thermometer'; allowed: smu, photo"):
        parse_config(_toy_config_data())
    with pytest.raises(UserInputError, match="unknown procedure 'toy-temperature'"):
        registry.measurement("toy-temperature")


def test_the_simulated_lab_serves_the_toy_over_loopback(toy):
    from labrig.config import load_config
    from labrig.simulators.lab import start_lab

    with start_lab(load_config(toy)) as lab:
        resource = lab.resources["thermometer"]
        assert resource.startswith("TCPIP::127.0.0.1::") and resource.endswith("::SOCKET")
        rm = pyvisa.ResourceManager("@py")
        link = rm.open_resource(resource, read_termination="\n", write_termination="\n")
        try:
            assert link.query("*IDN?") == "LABRIG,TOY-T1,0001,1.0"
            assert float(link.query("MEASURE:TEMPERATURE?")) == pytest.approx(AMBIENT_K)
        finally:
            link.close()
    assert not lab.servers


def test_check_opens_the_toy_and_names_it(toy):
    from labrig.check import check_roles
    from labrig.config import load_config
    from labrig.safe_off import safe_off

    config = load_config(toy)
    (result,) = check_roles(config)
    assert result.ok
    assert result.line.startswith("thermometer  ok     TCPIP::127.0.0.1::")
    assert result.line.endswith(": LABRIG TOY-T1, s/n 0001, firmware 1.0")
    assert safe_off(config) == []  # not a source: nothing to switch off


def test_labrig_procedures_lists_and_describes_the_toy(toy):
    listing = _labrig("procedures")
    assert listing.exit_code == 0, listing.output
    assert listing.output.splitlines()[-1] == (
        "toy-temperature toy: the device temperature, read a few times"
    )
    shown = _labrig("procedures", "TOY-temperature")
    assert shown.output.splitlines()[:2] == [
        "toy-temperature: toy: the device temperature, read a few times",
        "instruments: thermometer",
    ]
    typo = _labrig("run", "toy-temprature", "--simulate")
    assert typo.exit_code == 2
    assert "did you mean 'toy-temperature'?" in typo.output


def test_labrig_run_simulate_writes_the_toy_run_and_the_report_draws_it(toy, tmp_path):
    out = tmp_path / "runs"
    result = _labrig("run", "toy-temperature", "--simulate", "--no-progress", "-o", str(out))
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    path = Path(lines[0].removeprefix("finished: "))
    # the headline names only the mean; the spread stays in the file
    assert lines[1:] == ["  mean_temperature: 310.2 K", f"  all figures: labrig inspect {path}"]
    with h5py.File(path, "r", swmr=True) as f:
        assert f["entry/procedure"][()].decode() == "toy-temperature"
        assert f["entry/instruments/thermometer/driver"][()].decode() == "toy_thermometer"
        np.testing.assert_allclose(f["entry/data/temperature"][()], [AMBIENT_K] * 4)
        np.testing.assert_allclose(f["entry/data/time"][()], [0.0, 2.0, 4.0, 6.0], atol=1e-3)

    import matplotlib.pyplot as plt

    from labrig.report import draw, make_report
    from labrig.store import load_run

    fig = draw("toy-temperature", [load_run(path)])  # no figure registered: the generic one
    (ax,) = [a for a in fig.axes if a.get_visible()]
    assert ax.get_ylabel().startswith("temperature")
    np.testing.assert_allclose(ax.lines[0].get_ydata(), [AMBIENT_K] * 4)
    assert "toy-temperature (generic plot)" in fig.texts[0].get_text()
    plt.close(fig)
    report = make_report([path], tmp_path / "report", dpi=40)
    assert [p.name for p in report.figures] == [f"{path.stem}.png"]
    assert report.figures[0].stat().st_size > 1000


def test_shipped_entries_through_the_public_api():
    """What a plan or allowed-list generator reads: the measurements by name, each
    procedure named as its entry, its Parameters with units and defaults."""
    assert [m.name for m in registry.measurements()] == [
        "jvl",
        "spectrum",
        "pulsed-el",
        "lifetime",
        "solar-jv",
        "sclc",
    ]
    for entry in registry.measurements():
        assert entry.procedure_class().NAME == entry.name
    stop = registry.measurement(" JVL ").parameters()["stop_voltage"]
    assert (stop.value, stop.units, stop.minimum, stop.maximum) == (6.0, "V", -210, 210)
    assert registry.measurement("solar-jv").simulated_config == "solar_sim"
    assert registry.roles() == ("smu", "photometer", "spectrometer", "lifetime", "switch")
    assert registry.drivers_for("lifetime") == ("lifetime_rig", "smu_photometer")
    assert [d.name for d in registry.drivers() if d.source] == [
        "keithley2400",
        "lifetime_rig",
        "smu_photometer",
    ]


def test_a_driver_built_from_other_roles_opens_after_them():
    data = yaml.safe_load((shipped_config_dir() / "sim.yaml").read_text())
    data["instruments"]["lifetime"] = {"driver": "smu_photometer", "simulated": True}
    config = parse_config(data)
    assert registry.with_parts(config, ["lifetime"]) == ["smu", "photometer", "lifetime"]
    assert registry.with_parts(config, ["spectrometer", "smu"]) == ["smu", "spectrometer"]
