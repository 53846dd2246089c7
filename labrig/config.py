"""The bench config: YAML, validated strictly, with one readable line per problem.

A config names the instruments by role, the device on the bench, the photodiode
calibration and the safety limits.  ``device.preset`` pulls a preset from
``configs/devices/NAME.yaml`` (keys given in the config override it); a bare name for
the config itself (``sim``) resolves to the shipped ``configs/NAME.yaml``.
"""

from __future__ import annotations

import datetime as _dt
import math
import re
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import Field, PositiveFloat, ValidationError, model_validator

from labrig.devices import DeviceConfig, StrictModel
from labrig.errors import ConfigError
from labrig.limits import Limits
from labrig.switching import switch_channels

#: a date may also be written as an ISO text ("2026-11-01"), as JSON dumps of a config hold it
Date = Annotated[_dt.date, Field(strict=False)]


class InstrumentConfig(StrictModel):
    """One instrument: which driver, where it is, and whether it is simulated."""

    driver: str
    resource: str | None = None
    timeout_s: Annotated[float, Field(gt=0, le=600)] = 5.0
    simulated: bool = False
    backend: Literal["cseabreeze", "pyseabreeze"] | None = None
    channels: Annotated[int, Field(ge=1, le=64)] | None = None
    baud_rate: Annotated[int, Field(ge=300, le=921600)] | None = None


class ResponsivityTable(StrictModel):
    """Photodiode responsivity R(λ) in A/W at the listed wavelengths."""

    wavelength_nm: list[float]
    a_per_w: list[float]

    @model_validator(mode="after")
    def _check(self) -> ResponsivityTable:
        if len(self.wavelength_nm) != len(self.a_per_w) or len(self.wavelength_nm) < 2:
            raise ValueError("wavelength_nm and a_per_w need the same length, at least 2")
        if any(b <= a for a, b in zip(self.wavelength_nm, self.wavelength_nm[1:], strict=False)):
            raise ValueError("wavelength_nm must increase strictly")
        if any(r <= 0 or r > 1.5 for r in self.a_per_w):
            raise ValueError("a_per_w values must lie in (0, 1.5] A/W")
        return self


class PhotodiodeCalibration(StrictModel):
    """How photodiode current becomes optical power: R(λ) and the collection geometry."""

    responsivity: ResponsivityTable | None = None
    responsivity_file: str | None = None
    radius_mm: PositiveFloat | None = None
    distance_mm: PositiveFloat | None = None
    collection_factor: Annotated[float, Field(gt=0, le=1)] | None = None

    @model_validator(mode="after")
    def _check(self) -> PhotodiodeCalibration:
        if (self.responsivity is None) == (self.responsivity_file is None):
            raise ValueError("give exactly one of responsivity (a table) or responsivity_file")
        geometric = self.radius_mm is not None and self.distance_mm is not None
        if self.collection_factor is None and not geometric:
            raise ValueError("give collection_factor, or both radius_mm and distance_mm")
        return self


class Calibration(StrictModel):
    photodiode: PhotodiodeCalibration
    luminance_correction: PositiveFloat = 1.0
    luminance_correction_date: Date | None = None
    #: the factor (and its date) that ``labrig calibrate luminance`` replaced
    previous_luminance_correction: PositiveFloat | None = None
    previous_luminance_correction_date: Date | None = None
    spectral_response_file: str | None = None
    reference_peak_nm: Annotated[float, Field(ge=300, le=1100)] | None = None
    reference_fwhm_nm: Annotated[float, Field(gt=0, le=300)] | None = None
    date: Date | None = None


FaultKind = Literal[
    "timeout", "garbled", "disconnect", "short", "open", "overrange", "no_confirm", "stuck"
]


class FaultSpec(StrictModel):
    """A fault a simulated instrument injects after ``after`` commands (or readings)."""

    kind: FaultKind
    after: Annotated[int, Field(ge=0)] = 0
    channel: Annotated[int, Field(ge=1)] | None = None


class Distribution(StrictModel):
    """How one device parameter spreads from pixel to pixel: ``normal`` with ``mean`` and
    ``sd``; ``lognormal`` with median ``mean`` and ``sd`` the s.d. of its natural log
    (for quantities spanning decades: J0, shunt resistance)."""

    mean: float
    sd: Annotated[float, Field(ge=0)]
    distribution: Literal["normal", "lognormal"] = "normal"


class Pixel(StrictModel):
    """One pixel of a substrate: the switch channel it sits on and its active area."""

    channel: Annotated[str, Field(min_length=1)]
    area_cm2: PositiveFloat


class SubstrateLayout(StrictModel):
    """The pixels of a substrate, by name (``"A"``, ``"1"``...)."""

    pixels: Annotated[dict[str, Pixel], Field(min_length=1)]

    @model_validator(mode="after")
    def _one_pixel_per_channel(self) -> SubstrateLayout:
        seen: dict[str, str] = {}
        for name, pixel in self.pixels.items():
            if pixel.channel in seen:
                raise ValueError(
                    f"pixels {seen[pixel.channel]} and {name} are both on channel "
                    f"{pixel.channel!r}; each pixel needs its own channel"
                )
            seen[pixel.channel] = name
        return self


class SimulationConfig(StrictModel):
    """How the simulated bench behaves (ignored by real instruments)."""

    seed: int = 0
    clock: Literal["wall", "simulated"] = "simulated"
    clock_speed: Annotated[float, Field(gt=0, allow_inf_nan=True)] = math.inf  # .inf: instant
    noise: bool = True
    photodiode_dark_current_a: Annotated[float, Field(ge=0)] = 2e-12
    line_frequency_hz: Literal[50, 60] = 50
    faults: dict[str, list[FaultSpec]] = Field(default_factory=dict)
    #: device-to-device spread: device.model parameter -> its distribution over pixels
    spread: dict[str, Distribution] = Field(default_factory=dict)
    #: pixels that are broken on the simulated substrate: ``PIXEL`` on every substrate,
    #: ``SUBSTRATE/PIXEL`` only on the substrate ``device.sample`` names
    defects: dict[str, Literal["short", "open"]] = Field(default_factory=dict)


class BenchConfig(StrictModel):
    """A whole bench: instruments by role, device, calibration, limits, simulation."""

    name: str = "bench"
    instruments: dict[str, InstrumentConfig]
    device: DeviceConfig
    calibration: Calibration
    limits: Limits
    simulation: SimulationConfig = SimulationConfig()
    #: the pixels of the substrate on the switch (needs a ``switch`` instrument)
    substrate: SubstrateLayout | None = None
    #: a lab catalogue every run of this bench is published to (``labrig run --publish``)
    publish: Annotated[str, Field(pattern=r"^https?://\S+$")] | None = None
    #: the YAML text exactly as loaded (stored in every run file), and where it came from
    source_text: str = Field(default="", exclude=True)
    source_path: str = Field(default="", exclude=True)

    @model_validator(mode="after")
    def _check_roles(self) -> BenchConfig:
        """Roles, drivers, resources and fault kinds as the registry allows them."""
        from labrig import registry

        roles = registry.roles()
        for role, inst in self.instruments.items():
            if role not in roles:
                raise ValueError(f"unknown role {role!r}; allowed: {', '.join(roles)}")
            allowed = registry.drivers_for(role)
            if inst.driver not in allowed:
                raise ValueError(
                    f"instruments.{role}.driver {inst.driver!r} is not allowed; "
                    f"allowed: {', '.join(allowed)}"
                )
            if (
                not inst.simulated
                and not inst.resource
                and registry.driver(inst.driver).needs_resource
            ):
                raise ValueError(f"instruments.{role}.resource is required for a real instrument")
        for role, specs in self.simulation.faults.items():
            if role not in self.instruments:
                raise ValueError(f"simulation.faults.{role}: no such instrument in this config")
            driver = self.instruments[role].driver
            kinds = registry.driver(driver).faults
            for spec in specs:
                if spec.kind not in kinds:
                    raise ValueError(
                        f"simulation.faults.{role}: fault kind {spec.kind!r} cannot happen on "
                        f"the {driver}; allowed: {', '.join(kinds) or 'none'}"
                    )
        problems = self._substrate_problems()
        if problems:
            raise ValueError("\n".join(problems))
        return self

    def _substrate_problems(self) -> list[str]:
        """Everything wrong with the substrate, its switch, spread and defects."""
        problems = []
        switch = self.instruments.get("switch")
        layout = self.substrate
        if layout is not None and switch is None:
            problems.append("substrate: needs a switch instrument (instruments.switch)")
        if layout is not None and switch is not None:
            have = switch_channels(switch.driver, switch.channels)
            for name, pixel in layout.pixels.items():
                if pixel.channel not in have:
                    problems.append(
                        f"substrate.pixels.{name}.channel: the {switch.driver} has no channel "
                        f"{pixel.channel!r}; allowed: {have[0]} .. {have[-1]}"
                    )
        sim = self.simulation
        pixels = layout.pixels if layout is not None else {}
        for name in sim.defects:
            if name.rpartition("/")[2] not in pixels:
                problems.append(
                    f"simulation.defects.{name}: no such pixel in the substrate; allowed: "
                    f"{', '.join(pixels) or 'none (no substrate)'}"
                )
        if sim.spread:
            model = self.device.model
            numeric = sorted(
                k
                for k, v in (model.model_dump() if model is not None else {}).items()
                if isinstance(v, float)
            )
            for key in sim.spread:
                if key not in numeric:
                    problems.append(
                        f"simulation.spread.{key}: not a parameter of the device model; "
                        f"allowed: {', '.join(numeric) or 'none (no device.model)'}"
                    )
        return problems

    @property
    def simulated(self) -> bool:
        """True when every configured instrument is simulated."""
        return all(i.simulated for i in self.instruments.values())


# --------------------------------------------------------------------------- loading
def shipped_config_dir() -> Path:
    return Path(str(resources.files("labrig.configs")))


def is_shipped(path: str | Path) -> bool:
    """True for a file inside labrig's installed ``configs`` directory: those are read-only
    to every command (a calibrated copy goes elsewhere)."""
    return Path(path).resolve().is_relative_to(shipped_config_dir().resolve())


def resolve_config_path(name_or_path: str | Path) -> Path:
    """A path as given, or a shipped config by bare name (``sim`` -> configs/sim.yaml)."""
    path = Path(name_or_path)
    if path.exists() or path.suffix or len(path.parts) > 1:
        return path
    return shipped_config_dir() / f"{name_or_path}.yaml"


#: most nodes a YAML document may expand to through its aliases: a real config has a few
#: hundred; an alias bomb (each level aliasing the one before several times) has billions
MAX_YAML_NODES = 100_000

#: YAML 1.2 floats PyYAML (YAML 1.1) leaves as text: ``1e15``, ``1.0e15`` (no exponent sign)
_YAML12_FLOAT = re.compile(
    r"^[-+]?(?:[0-9][0-9_]*\.[0-9_]*|\.[0-9_]+|[0-9][0-9_]*)[eE][-+]?[0-9]+$"
)


class YAMLRefused(yaml.MarkedYAMLError):
    """YAML that parses but must not be used: a repeated key, an alias bomb."""


class ConfigLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing what it would silently accept: a key given twice in
    one mapping (the last would win: a second ``limits:`` block replaced the first) and
    aliases expanding past ``MAX_YAML_NODES`` nodes; ``1e15`` is read as a number."""

    def compose_document(self) -> yaml.Node:
        node = super().compose_document()
        _check_expansion(node)
        return node

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        first: dict[Any, yaml.Mark] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # ``<<: *base`` then a key of its own overrides on purpose
            key = self.construct_object(key_node, deep=True)
            try:
                seen = first.get(key)
            except TypeError:
                continue  # unhashable: the base constructor says so
            if seen is not None:
                raise YAMLRefused(
                    None,
                    None,
                    f"key {key!r} given twice in one mapping (first at line {seen.line + 1}); "
                    "each key may appear once",
                    key_node.start_mark,
                )
            first[key] = key_node.start_mark
        return super().construct_mapping(node, deep)


ConfigLoader.add_implicit_resolver("tag:yaml.org,2002:float", _YAML12_FLOAT, list("-+.0123456789"))


def _check_expansion(root: yaml.Node | None) -> None:
    """Count the nodes ``root`` expands to, each shared (aliased) node once per use, in
    time linear in the distinct nodes; refuse more than ``MAX_YAML_NODES``, and an alias
    inside its own anchor (an endless document)."""
    if root is None:
        return
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()  # entered, children not yet counted
    stack: list[yaml.Node] = [root]
    while stack:
        node = stack[-1]
        if id(node) in sizes:
            stack.pop()
            continue
        children = _children(node)
        if id(node) not in open_nodes:
            open_nodes.add(id(node))
            for child in children:
                if id(child) in open_nodes:
                    raise YAMLRefused(
                        None, None, "an alias refers to its own anchor", child.start_mark
                    )
                if id(child) not in sizes:
                    stack.append(child)
            continue
        stack.pop()
        open_nodes.discard(id(node))
        sizes[id(node)] = 1 + sum(sizes[id(c)] for c in children)
        if sizes[id(node)] > MAX_YAML_NODES:
            raise YAMLRefused(
                None,
                None,
                f"aliases expand this document past {MAX_YAML_NODES} nodes (an alias "
                "bomb?); write the values out or use fewer aliases",
                node.start_mark,
            )


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def parse_yaml(text: str) -> Any:
    """A config's YAML text as Python data, the one way labrig reads config text (files,
    presets and the copies stored in run files); ``yaml.YAMLError`` when it cannot."""
    return yaml.load(text, Loader=ConfigLoader)  # noqa: S506 - a SafeLoader subclass


def _read_yaml(path: Path, what: str) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{what} {path}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{what} {path}: cannot read it ({exc})") from None
    try:
        return text, parse_yaml(text)
    except YAMLRefused as exc:
        mark = exc.problem_mark
        raise ConfigError(f"{what} {path}: line {mark.line + 1}: {exc.problem}") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown place"
        raise ConfigError(f"{what} {path}: YAML syntax error at {where}: {exc.problem}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{what} {path}: YAML error: {exc}") from None


def load_preset(name: str) -> dict[str, Any]:
    """The ``device`` mapping of a shipped preset (``configs/devices/NAME.yaml``)."""
    path = shipped_config_dir() / "devices" / f"{name}.yaml"
    if not path.exists():
        known = sorted(p.stem for p in (shipped_config_dir() / "devices").glob("*.yaml"))
        raise ConfigError(f"device.preset: unknown preset {name!r}; allowed: {', '.join(known)}")
    _, data = _read_yaml(path, "device preset")
    if not isinstance(data, dict) or not isinstance(data.get("device"), dict):
        raise ConfigError(f"device preset {path}: must be a mapping with a 'device' key")
    return data["device"]


def _deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


#: longest value repr quoted in an error line
MAX_SHOWN = 80


def format_validation_error(exc: ValidationError) -> str:
    """One line per problem: dotted key, what is wrong, the value given."""
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"] if not str(p).startswith("function-after"))
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key (check the spelling; see the config reference in README.md)"
        elif err["type"] == "missing":
            msg = "required key is missing"
        given = err.get("input")
        text = repr(given)
        if len(text) > MAX_SHOWN:  # a whole sub-tree under a misspelt key is not readable
            text = text[: MAX_SHOWN - 3] + "..."
        shown = (
            ""
            if err["type"] in ("missing", "model_type") or isinstance(given, dict)
            else f" (got {text})"
        )
        lines.append(f"{loc}: {msg}{shown}" if loc else f"{msg}{shown}")  # msg names its key
    return "\n".join(lines)


def parse_config(data: Any, *, source_text: str = "", source_path: str = "") -> BenchConfig:
    """Validate an already-parsed mapping (presets merged in) into a ``BenchConfig``."""
    if not isinstance(data, dict):
        raise ConfigError(
            f"config {source_path or ''}: top level must be a mapping of keys".strip()
        )
    device = data.get("device")
    if isinstance(device, dict) and device.get("preset"):
        data = dict(data)
        data["device"] = _deep_merge(load_preset(str(device["preset"])), device)
    try:
        return BenchConfig.model_validate(
            {**data, "source_text": source_text, "source_path": source_path}
        )
    except ValidationError as exc:
        prefix = f"config {source_path}: " if source_path else ""
        raise ConfigError(
            "\n".join(prefix + line for line in format_validation_error(exc).splitlines())
        ) from None


def _missing_config(given: str, path: Path) -> str:
    """Config not found: say so, with a did-you-mean among the shipped names (for a bare
    name) or the YAML files next to it (for a path)."""
    from labrig.errors import did_you_mean

    shipped = sorted(p.stem for p in shipped_config_dir().glob("*.yaml"))
    if path.parent == shipped_config_dir() and not Path(given).suffix:
        return (
            f"config {given!r}: no such file or shipped config{did_you_mean(given, shipped)}; "
            f"shipped: {', '.join(shipped)}, or give a path to a YAML file"
        )
    nearby = sorted(p.name for p in path.parent.glob("*.y*ml")) if path.parent.is_dir() else []
    return f"config {path}: file not found{did_you_mean(path.name, nearby)}"


def load_config(name_or_path: str | Path) -> BenchConfig:
    """Read, merge presets into and validate a bench config; raise ``ConfigError``."""
    path = resolve_config_path(name_or_path)
    if not path.exists():
        raise ConfigError(_missing_config(str(name_or_path), path))
    text, data = _read_yaml(path, "config")
    return parse_config(data, source_text=text, source_path=str(path))


def load_responsivity(calibration: PhotodiodeCalibration, base_dir: Path | None = None):
    """The photodiode R(λ) table as two numpy arrays (nm, A/W), from the config or a CSV
    file (two columns, header allowed; relative paths resolve next to the config)."""
    import numpy as np

    if calibration.responsivity is not None:
        return (
            np.asarray(calibration.responsivity.wavelength_nm, float),
            np.asarray(calibration.responsivity.a_per_w, float),
        )
    path = Path(calibration.responsivity_file or "")
    if not path.is_absolute():
        path = (base_dir or Path.cwd()) / path
    from labrig.analysis.optics import read_spectral_table

    return read_spectral_table(path, f"calibration.photodiode.responsivity_file {path}", "A/W")


# --------------------------------------------------------------------------- resolved
#: units of a config key, from the suffix its name carries (longest suffix first); keys
#: without a unit suffix (counts, ratios, exponents, names) carry none
KEY_UNITS: tuple[tuple[str, str], ...] = (
    ("_k_cm2_w", "K*cm^2/W"),
    ("_ohm_cm2", "ohm*cm^2"),
    ("_cm2_vs", "cm^2/(V*s)"),
    ("_a_cm2", "A/cm^2"),
    ("a_per_w", "A/W"),
    ("_per_k", "1/K"),
    ("_cm2", "cm^2"),
    ("_cm3", "cm^-3"),
    ("_nm", "nm"),
    ("_mm", "mm"),
    ("_hz", "Hz"),
    ("_a", "A"),
    ("_v", "V"),
    ("_s", "s"),
    ("_h", "h"),
    ("_k", "K"),
)


def key_units(key: str) -> str:
    """The units a config key's name states (``active_area_cm2`` -> ``cm^2``), or ""."""
    for suffix, units in KEY_UNITS:
        if key.endswith(suffix):
            return units
    return ""


def _with_units(tree: Any) -> Any:
    """Every leaf of a JSON-like config tree as ``(value, units)``."""
    if isinstance(tree, dict):
        return {
            k: _with_units(v) if isinstance(v, dict) else (v, key_units(k))
            for k, v in tree.items()
            if v is not None
        }
    return tree


def resolved_configuration(config: BenchConfig) -> dict[str, Any]:
    """The configuration a run actually used, as a tree whose leaves are ``(value, units)``.

    The text as written can name a preset and a responsivity file; this is what they
    resolved to: the device with its preset expanded, the photodiode responsivity table
    as loaded, the collection factor applied (and how it was obtained), the reference
    spectrum assumed when none is recorded, the spectral-response table, the luminance
    correction, the limits.  A run file that holds it lets every reported figure be
    recomputed from the file alone.  A part that cannot be resolved (e.g. a
    responsivity file a solar-cell run never needed) is recorded as the reason."""
    from labrig.analysis.optics import collection_factor

    tree = config.model_dump(mode="json", exclude={"source_text", "source_path"})
    photodiode = tree["calibration"]["photodiode"]
    base = Path(config.source_path).parent if config.source_path else None
    try:
        wl, a_per_w = load_responsivity(config.calibration.photodiode, base)
    except ConfigError as exc:
        photodiode["responsivity_error"] = str(exc)
    else:
        photodiode["responsivity"] = {"wavelength_nm": wl.tolist(), "a_per_w": a_per_w.tolist()}
    photodiode["collection_factor"] = collection_factor(config.calibration.photodiode)
    photodiode["collection_method"] = (
        "calibrated"
        if config.calibration.photodiode.collection_factor is not None
        else "lambertian on-axis r^2/(r^2+d^2)"
    )
    tree["calibration"].update(_reference_spectrum(config))
    if config.calibration.spectral_response_file:
        from labrig.analysis.spectral import SpectralResponse

        path = Path(config.calibration.spectral_response_file)
        if not path.is_absolute() and base is not None:
            path = base / path
        try:
            response = SpectralResponse.from_csv(path)
        except ConfigError as exc:
            tree["calibration"]["spectral_response_error"] = str(exc)
        else:
            tree["calibration"]["spectral_response"] = {
                "wavelength_nm": response.wavelength_nm.tolist(),
                "relative_response": response.response.tolist(),
            }
    return _with_units(tree)


def _reference_spectrum(config: BenchConfig) -> dict[str, Any]:
    """The Gaussian reference spectrum photometry assumes when no spectrum is recorded."""
    from labrig.analysis.photometry import REFERENCE_GRID_NM, reference_spectrum_band

    try:
        peak, fwhm = reference_spectrum_band(config)
    except ConfigError as exc:
        return {"reference_spectrum_error": str(exc)}
    return {
        "reference_spectrum": {
            "shape": "gaussian, unit integral",
            "peak_nm": peak,
            "fwhm_nm": fwhm,
            "grid_start_nm": float(REFERENCE_GRID_NM[0]),
            "grid_stop_nm": float(REFERENCE_GRID_NM[-1]),
            "grid_step_nm": float(REFERENCE_GRID_NM[1] - REFERENCE_GRID_NM[0]),
        }
    }
