"""The batch plan: which substrates, which of their pixels, under what condition label,
and which measurements (with their parameters) each pixel gets, in order.

```yaml
name: NSA series
bench: bench.yaml           # the bench config (substrate layout + switch); or a shipped name
output_dir: runs/nsa        # run files and the batch file go here
seed: 7                     # optional: the simulated bench's seed (simulation.seed)
samples:
  - {substrate: S1, condition: NSA 0.6 M}              # every pixel of the layout
  - {substrate: S2, condition: control, pixels: [A, C]}
measurements:               # per pixel, in this order
  - jvl: {stop_voltage: 6, step_voltage: 0.1}
  - spectrum
```

Relative paths resolve next to the plan file.  Everything is checked here, before
anything is opened: the plan's own keys (pydantic), the bench config (``load_config``:
a channel the switch lacks, a missing area, two pixels on one channel), pixels the layout
lacks, measurements and their parameters (the registry and ``labrig.parameters``, as
``labrig run --set`` checks them) and each measurement's own ``validate`` (limits) on
every pixel area.  Each problem is one line (``UserInputError``, exit 2).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, ValidationError, field_validator

from labrig.config import BenchConfig, _read_yaml, format_validation_error, load_config
from labrig.devices import StrictModel
from labrig.errors import UserInputError

Scalar = str | int | float | bool


class SampleSpec(StrictModel):
    """One substrate of the plan."""

    substrate: Annotated[str, Field(min_length=1)]
    #: the pixels to measure (default: every pixel of the layout, in its order)
    pixels: list[str] | None = None
    #: the condition label the statistics group by ("NSA 0.6 M"; "" for none)
    condition: str = ""

    @field_validator("pixels", mode="before")
    @classmethod
    def _names(cls, value: Any) -> Any:
        """Pixel names may be written as numbers (``[1, 2]``)."""
        if isinstance(value, list):
            return [str(v) if isinstance(v, int) and not isinstance(v, bool) else v for v in value]
        return value


class PlanSpec(StrictModel):
    """The plan file as written."""

    name: Annotated[str, Field(min_length=1)]
    bench: Annotated[str, Field(min_length=1)]
    output_dir: str = "runs"
    seed: Annotated[int, Field(ge=0)] | None = None
    samples: Annotated[list[SampleSpec], Field(min_length=1)]
    #: each a measurement name, or ``{name: {parameter: value, ...}}``
    measurements: Annotated[list[str | dict[str, dict[str, Scalar] | None]], Field(min_length=1)]


@dataclass(frozen=True)
class Step:
    """One measurement of every pixel: its registry entry and the parameters it sets."""

    measurement: Any  # labrig.registry.Measurement
    values: Mapping[str, Any]

    @property
    def name(self) -> str:
        return self.measurement.name


@dataclass(frozen=True)
class Sample:
    substrate: str
    pixels: tuple[str, ...]
    condition: str


@dataclass(frozen=True)
class Plan:
    """A validated plan, ready to run (``labrig.batch.runner.run_batch``)."""

    name: str
    path: Path | None
    text: str
    config: BenchConfig
    output_dir: Path
    seed: int | None
    samples: tuple[Sample, ...]
    steps: tuple[Step, ...]

    @property
    def rows(self) -> list[tuple[str, str, str, str]]:
        """(substrate, pixel, condition, measurement) of every planned run, in order."""
        return [
            (s.substrate, p, s.condition, step.name)
            for s in self.samples
            for p in s.pixels
            for step in self.steps
        ]

    def device_config(self, substrate: str, pixel: str) -> BenchConfig:
        """The bench config one pixel is measured with: the pixel's area as the device's,
        the substrate as the device's sample (the simulated bench draws its spread for
        it), the plan's seed."""
        return device_config(self.config, substrate, pixel, self.seed)


def device_config(
    config: BenchConfig, substrate: str, pixel: str, seed: int | None = None
) -> BenchConfig:
    """``config`` for ``pixel`` of ``substrate`` (see ``Plan.device_config``)."""
    area = config.substrate.pixels[pixel].area_cm2  # type: ignore[union-attr]
    device = config.device.model_copy(update={"sample": substrate, "active_area_cm2": area})
    update: dict[str, Any] = {"device": device}
    if seed is not None:
        update["simulation"] = config.simulation.model_copy(update={"seed": seed})
    return config.model_copy(update=update)


def _step(item: str | dict[str, Any], where: str, config: BenchConfig) -> Step:
    """One measurement of the plan, its parameters checked as ``labrig run --set``'s
    are (``labrig.runner.procedure_for``) for this bench's device."""
    from labrig import registry
    from labrig.runner import procedure_for

    if isinstance(item, str):
        name, values = item, {}
    elif len(item) != 1:
        raise UserInputError(
            f"{where}: one measurement per item ({', '.join(map(str, item))} given); "
            "write each as its own '- name: {parameter: value}'"
        )
    else:
        ((name, values),) = item.items()
    try:
        measurement = registry.measurement(name)
    except UserInputError as exc:
        raise UserInputError(f"{where}: {exc}") from None
    procedure = procedure_for(measurement, config, values or {}, f"{where}.{measurement.name}: ")
    parsed = {k: getattr(procedure, k) for k in (values or {})}
    return Step(measurement, parsed)


def _bench(spec: PlanSpec, base: Path) -> BenchConfig:
    given = Path(spec.bench)
    path = given if given.is_absolute() or not (base / given).exists() else base / given
    config = load_config(path)
    if config.substrate is None:
        raise UserInputError(
            f"bench {config.source_path}: no substrate layout (substrate.pixels with each "
            "pixel's channel and area_cm2) for the batch to switch through"
        )
    return config


def _samples(spec: PlanSpec, config: BenchConfig) -> tuple[Sample, ...]:
    layout = list(config.substrate.pixels)  # type: ignore[union-attr]
    seen: set[str] = set()
    samples = []
    for i, s in enumerate(spec.samples):
        if s.substrate in seen:
            raise UserInputError(
                f"samples.{i}.substrate: {s.substrate!r} is planned twice; each substrate once"
            )
        seen.add(s.substrate)
        pixels = layout if s.pixels is None else s.pixels
        for pixel in pixels:
            if pixel not in layout:
                raise UserInputError(
                    f"samples.{i}.pixels: no pixel {pixel!r} in the substrate layout of "
                    f"{config.source_path or config.name}; allowed: {', '.join(layout)}"
                )
        if len(set(pixels)) != len(pixels):
            raise UserInputError(f"samples.{i}.pixels: a pixel is listed twice")
        samples.append(Sample(s.substrate, tuple(pixels), s.condition))
    return tuple(samples)


def _check_steps(steps: tuple[Step, ...], config: BenchConfig, samples: tuple[Sample, ...]):
    """Each measurement as ``run_procedure`` checks it before it touches anything
    (``labrig.runner.preflight``: the stored text, the parameters, ``validate`` with the
    limits, the roles), on every pixel planned (the pixel's area is the device's)."""
    from labrig.runner import preflight

    pixels = {p for s in samples for p in s.pixels}
    for i, step in enumerate(steps):
        for pixel in sorted(pixels):
            procedure = step.measurement.procedure_class()()
            procedure.set_parameters(dict(step.values))
            cfg = device_config(config, "check", pixel)
            try:
                preflight(procedure, cfg, sample=f"{samples[0].substrate}-{pixel}")
            except UserInputError as exc:
                raise UserInputError(
                    f"measurements.{i}.{step.name} (pixel {pixel}): {exc}"
                ) from None


def load_plan(path: Path) -> Plan:
    """Read and check the plan at ``path`` (see the module docstring)."""
    path = Path(path)
    text, data = _read_yaml(path, "plan")
    return parse_plan(data, text=text, path=path)


def parse_plan(data: Any, *, text: str = "", path: Path | None = None) -> Plan:
    """Check already-parsed plan data; relative paths resolve next to ``path``."""
    prefix = f"plan {path}: " if path is not None else "plan: "
    if not isinstance(data, dict):
        raise UserInputError(f"{prefix}top level must be a mapping of keys")
    try:
        spec = PlanSpec.model_validate(data)
    except ValidationError as exc:
        raise UserInputError(
            "\n".join(prefix + line for line in format_validation_error(exc).splitlines())
        ) from None
    base = path.parent if path is not None else Path.cwd()
    try:
        config = _bench(spec, base)
        samples = _samples(spec, config)
        steps = tuple(
            _step(m, f"measurements.{i}", config) for i, m in enumerate(spec.measurements)
        )
        names = [s.name for s in steps]
        if len(set(names)) != len(names):
            raise UserInputError("measurements: a measurement is listed twice; once each")
        _check_steps(steps, config, samples)
    except UserInputError as exc:
        raise type(exc)(
            "\n".join(
                line if line.startswith("config ") else prefix + line
                for line in str(exc).splitlines()
            )
        ) from None
    output = Path(spec.output_dir)
    return Plan(
        name=spec.name,
        path=path,
        text=text,
        config=config,
        output_dir=output if output.is_absolute() else base / output,
        seed=spec.seed,
        samples=samples,
        steps=steps,
    )
