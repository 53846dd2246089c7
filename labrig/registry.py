"""Every instrument driver and every measurement labrig knows, one entry each.

Config validation, the bench, the simulated lab, ``check``/``safe-off``, the command
line and the report all read this module, so adding an instrument or a measurement is
one entry here plus its own files (driver, simulator; procedure, figure).  Entries are
declarative, in the manner of python-seabreeze's per-model device classes: what a thing
*is* (its name, roles, faults, device kinds, headline figures), with the code it needs
named by import path (``"module:attribute"``) and imported only when used, so listing
or validating imports no driver, procedure, pymeasure or scipy and ``labrig --help``
stays fast.  An entry may also hold the object itself (a test's toy instrument).

Public API (also what plan and queue-server generators read): :func:`drivers`,
:func:`driver`, :func:`roles`, :func:`drivers_for`; :func:`measurements`,
:func:`measurement` (by command-line name, with a did-you-mean), :func:`find_measurement`
(exact, ``None`` when unknown); ``Measurement.procedure_class()``,
``Measurement.parameters()``; :func:`register` and :func:`registered` (scoped, for tests).
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from labrig.config import BenchConfig

#: an import path ``"module:attribute"``, or the object itself
Ref = str | Callable[..., Any]


def resolve_ref(ref: Ref) -> Any:
    """The object an entry names (imported on first use)."""
    if not isinstance(ref, str):
        return ref
    module, _, name = ref.partition(":")
    return getattr(importlib.import_module(module), name)


def _installed(ref: Ref) -> bool:
    """True when ``ref``'s module can be imported (checked without importing it)."""
    return not isinstance(ref, str) or importlib.util.find_spec(ref.partition(":")[0]) is not None


# ------------------------------------------------------------------------------ drivers
@dataclass(frozen=True)
class Driver:
    """One instrument driver, as a config names it (``instruments.<role>.driver``).

    Opening: ``connect(resource, **options)`` with each config key in ``options`` that is
    set (``timeout_s``, ``baud_rate``, ...); a driver ``built_from`` other roles is
    ``connect(*their_instruments)`` instead.  Simulating: ``simulator(request) ->
    labrig.simulators.lab.Started`` builds the simulated instrument and the server the
    driver reaches it through; an ``in_process`` simulator (a USB device, which cannot be
    served over loopback) hands over an object that ``attach(handle, resource=...)``
    turns into the driver."""

    name: str
    #: the roles (``instruments.<role>``) it can fill
    roles: tuple[str, ...]
    #: the driver class: the limits it owns (``check_drive``) are asked before it opens
    instrument: Ref
    connect: Ref
    #: config keys passed to ``connect`` as keywords when set
    options: tuple[str, ...] = ("timeout_s",)
    simulator: Ref | None = None
    #: the fault kinds its simulator can inject (``simulation.faults``)
    faults: tuple[str, ...] = ()
    #: it can put power into a device: ``safe-off`` ramps it down and switches it off
    source: bool = False
    #: roles whose instruments it is built from (opened first, by the bench)
    built_from: tuple[str, ...] = ()
    #: a real one needs ``instruments.<role>.resource`` (False: it finds the first attached)
    needs_resource: bool = True
    in_process: bool = False
    attach: Ref | None = None
    #: a fixed number of channels (a rig built from one SMU has one), else the config's
    channels: int | None = None


DRIVERS: tuple[Driver, ...] = (
    Driver(
        "keithley2400",
        roles=("smu",),
        instrument="labrig.drivers.keithley2400:Keithley2400",
        connect="labrig.drivers.keithley2400:connect",
        simulator="labrig.simulators.keithley2400:serve",
        faults=("timeout", "garbled", "disconnect", "short", "open"),
        source=True,
    ),
    Driver(
        "keithley6485",
        roles=("photometer",),
        instrument="labrig.drivers.keithley6485:Keithley6485",
        connect="labrig.drivers.keithley6485:connect",
        simulator="labrig.simulators.keithley6485:serve",
        faults=("timeout", "garbled", "disconnect", "overrange"),
    ),
    Driver(
        "usb2000plus",
        roles=("spectrometer",),
        instrument="labrig.drivers.usb2000plus:USB2000Plus",
        connect="labrig.drivers.usb2000plus:connect",
        options=("backend",),
        simulator="labrig.simulators.spectrometer:serve",
        faults=("timeout", "disconnect", "garbled", "overrange"),
        needs_resource=False,
        in_process=True,
        attach="labrig.drivers.usb2000plus:USB2000Plus",
    ),
    Driver(
        "lifetime_rig",
        roles=("lifetime",),
        instrument="labrig.drivers.lifetime_rig:SerialLifetimeRig",
        connect="labrig.drivers.lifetime_rig:connect",
        options=("timeout_s", "baud_rate"),
        simulator="labrig.simulators.lifetime_rig:serve",
        faults=("open", "short", "disconnect", "timeout", "garbled"),
        source=True,
    ),
    Driver(
        "smu_photometer",  # the 2400 + 6485 used as a one-channel lifetime rig
        roles=("lifetime",),
        instrument="labrig.drivers.smu_photometer_rig:SMUPhotometerRig",
        connect="labrig.drivers.smu_photometer_rig:SMUPhotometerRig",
        options=(),
        source=True,
        built_from=("smu", "photometer"),
        needs_resource=False,
        channels=1,
    ),
    Driver(
        "keithley7001",  # also a 7002: the same SCPI, more slots
        roles=("switch",),
        instrument="labrig.drivers.keithley7001:Keithley7001",
        connect="labrig.drivers.keithley7001:connect",
        options=("timeout_s", "channels"),
        simulator="labrig.simulators.keithley7001:serve",
        # no_confirm: a relay that does not close; stuck: one that stays closed when opened
        faults=("timeout", "garbled", "disconnect", "no_confirm", "stuck"),
    ),
    Driver(
        "relay_board",  # docs/relay-board-protocol.md
        roles=("switch",),
        instrument="labrig.drivers.relay_board:SerialRelayBoard",
        connect="labrig.drivers.relay_board:connect",
        options=("timeout_s", "baud_rate"),
        simulator="labrig.simulators.relay_board:serve",
        faults=("timeout", "garbled", "disconnect", "no_confirm", "stuck"),
    ),
)


# ------------------------------------------------------------------------- measurements
@dataclass(frozen=True)
class Measurement:
    """One measurement, by its command-line name (``labrig run NAME``)."""

    name: str
    #: the ``labrig.procedure.LabrigProcedure`` subclass
    procedure: Ref
    #: ``figure(runs: list[LoadedRun]) -> Figure`` of the report (None: the generic plot)
    figure: Ref | None = None
    #: the shipped config (or a path) ``--simulate`` runs it on
    simulated_config: str = "sim"
    #: the analysis figures ``labrig run`` prints (fnmatch patterns; empty: all of them)
    headline: tuple[str, ...] = ()
    #: the ``device.kind`` values it measures (empty: any)
    device_kinds: tuple[str, ...] = ()

    def procedure_class(self) -> type:
        """The procedure class (imported now)."""
        return resolve_ref(self.procedure)

    def parameters(self) -> dict[str, Any]:
        """``{name: pymeasure Parameter}`` with the defaults a new run starts from."""
        return self.procedure_class()().parameter_objects()

    def figure_function(self) -> Callable | None:
        return None if self.figure is None else resolve_ref(self.figure)

    def fits(self, config: BenchConfig) -> bool:
        """True when ``config``'s device is of a kind this measures."""
        return not self.device_kinds or config.device.kind in self.device_kinds

    def check_device(self, config: BenchConfig) -> None:
        """Refuse a bench whose device this does not measure (``solar-jv`` on an LED),
        before anything is opened; one ``ConfigError`` line."""
        from labrig.errors import ConfigError

        if not self.fits(config):
            allowed = " or ".join(self.device_kinds)
            raise ConfigError(
                f"device.kind: procedure {self.name} needs a device of kind {allowed}, but "
                f"config {config.name!r} has kind {config.device.kind} "
                f"({config.device.sample}); use a config whose device.kind is {allowed}"
            )


MEASUREMENTS: tuple[Measurement, ...] = (
    Measurement(
        "jvl",
        procedure="labrig.procedures.jvl:JVLProcedure",
        figure="labrig.report.jvl:jvl_figure",
        headline=(
            "turn_on_voltage",
            "peak_eqe",
            "max_luminance",
            "eqe_at_1000_cd_m2",
            "peak_current_efficiency",
            "el_peak_wavelength",
            "cie_x",
            "cie_y",
            "contact_note",
        ),
        device_kinds=("led",),
    ),
    Measurement(
        "spectrum",
        procedure="labrig.procedures.spectrum:SpectrumProcedure",
        figure="labrig.report.spectrum:spectrum_figure",
        headline=(
            "peak_wavelength",
            "fwhm",
            "dominant_wavelength",
            "cie_x",
            "cie_y",
            "saturated",
        ),
        device_kinds=("led",),
    ),
    Measurement(
        "pulsed-el",
        procedure="labrig.procedures.pulsed_el:PulsedELProcedure",
        figure="labrig.report.pulsed_el:pulsed_figure",
        headline=(
            "el_drop",
            "el_monotonic_with_width",
            "heating_drop",
            "el_drift",
            "width_deviation_worst",
        ),
        device_kinds=("led",),
    ),
    Measurement(
        "lifetime",
        procedure="labrig.procedures.lifetime:LifetimeProcedure",
        figure="labrig.report.lifetime:lifetime_figure",
        headline=(
            "channels_analysed",
            "acceleration_exponent",
            "acceleration_exponent_note",
            "T50_at_*_cd_m2",
        ),
        device_kinds=("led",),
    ),
    Measurement(
        "solar-jv",
        procedure="labrig.procedures.solar_jv:SolarJVProcedure",
        figure="labrig.report.solar_jv:solar_figure",
        simulated_config="solar_sim",
        headline=(
            "reverse_voc",
            "reverse_jsc",
            "reverse_ff",
            "reverse_pce",
            "forward_pce",
            "hysteresis_index",
            "mpp_pce",
        ),
        device_kinds=("solar",),
    ),
    Measurement(
        "sclc",
        procedure="labrig.procedures.sclc:SCLCProcedure",
        figure="labrig.report.sclc:sclc_figure",
        simulated_config="sclc_sim",
        headline=("mobility", "trap_density", "v_tfl", "child_slope"),
        device_kinds=("single_carrier",),
    ),
)


# ----------------------------------------------------------------------------- lookup
_drivers: dict[str, Driver] = {d.name: d for d in DRIVERS}
_measurements: dict[str, Measurement] = {m.name: m for m in MEASUREMENTS}


def drivers() -> tuple[Driver, ...]:
    """Every registered driver, in registration order."""
    return tuple(_drivers.values())


def driver(name: str) -> Driver:
    """The driver a config names; ``KeyError`` for an unknown name (config validation
    refuses those first, with the allowed names)."""
    return _drivers[name]


def roles() -> tuple[str, ...]:
    """Every role some driver can fill, in registration order (the order a bench opens
    them in, and ``check`` lists them in)."""
    return tuple(dict.fromkeys(r for d in _drivers.values() for r in d.roles))


def drivers_for(role: str) -> tuple[str, ...]:
    """Names of the drivers that can fill ``role``."""
    return tuple(d.name for d in _drivers.values() if role in d.roles)


def with_parts(config: BenchConfig, wanted: Iterable[str]) -> list[str]:
    """The ``wanted`` roles in registration order, each after the roles its configured
    driver is built from (a one-channel lifetime rig after the SMU and photometer it is
    made of): what a bench for ``wanted`` opens.  Roles no driver fills are left out."""
    known = roles()
    order: list[str] = []
    for role in sorted((r for r in wanted if r in known), key=known.index):
        inst = config.instruments.get(role)
        parts = _drivers[inst.driver].built_from if inst is not None else ()
        order.extend(r for r in (*parts, role) if r not in order)
    return order


def measurements() -> tuple[Measurement, ...]:
    """Every measurement whose procedure is installed, in registration order."""
    return tuple(m for m in _measurements.values() if _installed(m.procedure))


def find_measurement(name: str) -> Measurement | None:
    """The measurement registered exactly as ``name`` (a run file's procedure), or None."""
    return _measurements.get(name)


def measurement(name: str) -> Measurement:
    """The measurement typed as ``name`` on the command line (case-insensitive); an
    unknown name raises ``UserInputError`` with a did-you-mean and the allowed names."""
    from labrig.errors import UserInputError, did_you_mean

    known = measurements()
    for entry in known:
        if entry.name.lower() == name.strip().lower():
            return entry
    names = [m.name for m in known]
    raise UserInputError(
        f"unknown procedure {name!r}{did_you_mean(name, names)}; allowed: {', '.join(names)}"
    )


def register(entry: Driver | Measurement) -> None:
    """Add (or replace) a driver or measurement for the rest of the process."""
    if isinstance(entry, Driver):
        _drivers[entry.name] = entry
    else:
        _measurements[entry.name] = entry


@contextlib.contextmanager
def registered(*entries: Driver | Measurement) -> Iterator[None]:
    """``entries`` registered inside the ``with`` block only (what was there before,
    including replaced entries, is restored after it)."""
    saved: tuple[Mapping[str, Driver], Mapping[str, Measurement]] = (
        dict(_drivers),
        dict(_measurements),
    )
    try:
        for entry in entries:
            register(entry)
        yield
    finally:
        _drivers.clear()
        _drivers.update(saved[0])
        _measurements.clear()
        _measurements.update(saved[1])
