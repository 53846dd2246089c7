"""Procedure parameters at the command line: describe them, and set them from text.

``--set name=value`` goes through the pymeasure Parameter's own conversion and range
check, so the CLI, the GUI and scripts accept exactly the same values; failures become
one ``ParameterError`` line naming the parameter, the value and what is allowed.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from labrig.deferred import defer_pymeasure_packages
from labrig.errors import ParameterError, did_you_mean

defer_pymeasure_packages()  # pymeasure.experiment's parameters module alone
from pymeasure.experiment.parameters import (  # noqa: E402
    BooleanParameter,
    FloatParameter,
    IntegerParameter,
    ListParameter,
    Parameter,
    VectorParameter,
)


@dataclass(frozen=True)
class ParameterInfo:
    """What a user needs to know to set one parameter."""

    name: str
    label: str
    kind: str
    units: str
    default: Any
    allowed: str


def _allowed(param: Parameter) -> str:
    units = f" {param.units}" if getattr(param, "units", None) else ""
    if isinstance(param, (FloatParameter, IntegerParameter)):
        return f"{param.minimum:g} to {param.maximum:g}{units}"
    if isinstance(param, BooleanParameter):
        return "true or false"
    if isinstance(param, ListParameter):
        return "one of " + ", ".join(str(c) for c in param.choices)
    if isinstance(param, VectorParameter):
        return f"{param._length} comma-separated numbers{units}"
    return "text"


def _kind(param: Parameter) -> str:
    return {
        FloatParameter: "float",
        IntegerParameter: "integer",
        BooleanParameter: "boolean",
        ListParameter: "choice",
        VectorParameter: "vector",
    }.get(type(param), "text")


def parameter_objects(procedure_class: type) -> dict[str, Parameter]:
    """The class's Parameters by attribute name, in declaration order."""
    found = {}
    for klass in reversed(procedure_class.__mro__):
        for name, value in vars(klass).items():
            if isinstance(value, Parameter):
                found[name] = value
    return found


def describe(procedure_class: type) -> list[ParameterInfo]:
    return [
        ParameterInfo(
            name=name,
            label=param.name,
            kind=_kind(param),
            units=getattr(param, "units", None) or "",
            default=param.default,
            allowed=_allowed(param),
        )
        for name, param in parameter_objects(procedure_class).items()
    ]


_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


def _number(param: Parameter, text: str, what: str) -> float:
    """A bare number, or a quantity with units converted to the parameter's units by
    pint (pymeasure's unit registry): ``7 V``, ``5 mA`` for an A parameter, ``500 us``
    for ms."""
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        pass
    from pint.errors import DimensionalityError
    from pymeasure.units import ureg

    try:
        quantity = ureg.Quantity(text)
    except Exception:  # noqa: BLE001 - pint's parser raises many kinds for non-quantities
        raise ValueError(f"not {what}") from None
    if not isinstance(quantity, ureg.Quantity) or quantity.unitless:
        return float(getattr(quantity, "magnitude", quantity))
    units = getattr(param, "units", None)
    if not units:
        raise ValueError(f"has units ({quantity.units:~}) but the parameter has none")
    try:
        return float(quantity.m_as(units))
    except DimensionalityError:
        raise ValueError(f"{quantity.units:~} cannot be converted to {units}") from None


def _convert_text(param: Parameter, text: str) -> Any:
    if isinstance(param, BooleanParameter):
        lowered = text.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise ValueError("not a boolean")
    if isinstance(param, IntegerParameter):
        value = _number(param, text, "an integer")
        if not float(value).is_integer():
            raise ValueError("not an integer")
        return int(value)
    if isinstance(param, FloatParameter):
        value = _number(param, text, "a number")
        if math.isnan(value):  # pymeasure's range check passes NaN (every comparison is False)
            raise ValueError("not a number")
        return value
    if isinstance(param, ListParameter):
        for choice in param.choices:
            if str(choice) == text.strip():
                return choice
        raise ValueError("not one of the choices")
    return text


def split_settings(settings: Iterable[str]) -> dict[str, str]:
    """``name=value`` strings (``--set``) as ``{name: text}``; raise ParameterError."""
    values: dict[str, str] = {}
    for item in settings:
        name, sep, text = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise ParameterError(f"--set {item!r}: expected name=value")
        values[name] = text
    return values


def parse_settings(procedure_class: type, settings: Iterable[str]) -> dict[str, Any]:
    """Turn ``name=value`` strings into validated values; raise ParameterError."""
    return check_values(procedure_class, split_settings(settings), prefix="--set ")


def check_values(
    procedure_class: type, values: Mapping[str, Any], prefix: str = ""
) -> dict[str, Any]:
    """Validated values of ``{name: value}``, each text (``"7 V"``, ``"every_step"``, as
    after ``--set``) or already typed (a plan's ``stop_voltage=7.0``), through the same
    conversion and range check; raise ParameterError, the message starting ``prefix``."""
    params = parameter_objects(procedure_class)
    checked: dict[str, Any] = {}
    for name, value in values.items():
        if name not in params:
            raise ParameterError(
                f"{prefix}{name}: no such parameter{did_you_mean(name, params)}; "
                f"allowed: {', '.join(params) or 'none'}"
            )
        param = params[name]
        try:
            typed = _convert_text(param, value) if isinstance(value, str) else _typed(param, value)
            typed = copy.copy(param).convert(typed)
        except (ValueError, TypeError) as exc:
            reason = str(exc).split(" of type")[0]
            reason = {
                "FloatParameter value is below the minimum": "below the minimum",
                "FloatParameter value is above the maximum": "above the maximum",
                "IntegerParameter value is below the minimum": "below the minimum",
                "IntegerParameter value is above the maximum": "above the maximum",
            }.get(reason, reason)
            raise ParameterError(
                f"{prefix}{name}={value}: {reason}; allowed: {_allowed(param)}"
            ) from None
        checked[name] = typed
    return checked


def _typed(param: Parameter, value: Any) -> Any:
    """A value given as a Python value (not text): the type the parameter takes, or
    ValueError with the CLI's reason."""
    if isinstance(param, BooleanParameter):
        if not isinstance(value, bool):
            raise ValueError("not a boolean")
        return value
    if isinstance(param, (IntegerParameter, FloatParameter)):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(
                "not an integer" if isinstance(param, IntegerParameter) else "not a number"
            )
        if isinstance(param, IntegerParameter):
            if not float(value).is_integer():
                raise ValueError("not an integer")
            return int(value)
        if math.isnan(value):
            raise ValueError("not a number")
        return float(value)
    if isinstance(param, ListParameter) and value not in param.choices:
        raise ValueError("not one of the choices")
    return value
