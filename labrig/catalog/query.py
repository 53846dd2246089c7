"""``labrig catalog search`` terms as Tiled queries.

A search is terms separated by spaces, all of which must hold: ``NAME OP VALUE`` with
OP one of ``= != > >= < <=`` and ``~`` (contains: SQL ``LIKE``, any
case on the embedded SQLite catalogue).  NAME is a plain field
(``procedure``, ``sample``, ``status``, ``bench``, ...; ``labrig.catalog.metadata.FIELDS``),
a dotted path into the metadata (``instruments.smu.serial_number``,
``figures.channel_01.T50``), or else a headline figure (``peak_eqe`` is
``figures.peak_eqe``).  A figure's or parameter's value that reads as a number is compared as one; quote a value
holding spaces (``sample~"NSA 0.6"``).  From Python, Tiled's own queries
(``tiled.queries.Comparison`` ...) do the same on the same metadata.
"""

from __future__ import annotations

import re
import shlex
from typing import Any

from labrig.catalog.metadata import FIELDS
from labrig.errors import UserInputError

#: operators, longest first so that ">=" is not read as ">"
OPERATORS = ("!=", ">=", "<=", "=", ">", "<", "~")
_TERM = re.compile(r"^([A-Za-z_][A-Za-z0-9_.]*)(!=|>=|<=|=|>|<|~)(.+)$")
_COMPARISON = {">": "gt", ">=": "ge", "<": "lt", "<=": "le"}
HOW = f"NAME OP VALUE with OP one of {' '.join(OPERATORS)}, e.g. 'procedure=jvl peak_eqe>20'"


def metadata_key(name: str) -> str:
    """Where ``name`` is in a run's metadata."""
    if name in FIELDS or "." in name:
        return name
    return f"figures.{name}"


def value_of(text: str) -> Any:
    """A term's value: a number if it reads as one, true/false as booleans, else text."""
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    try:
        number = float(text)
    except ValueError:
        return text
    return int(number) if number.is_integer() and "." not in text and "e" not in text else number


def parse(search: str) -> list[Any]:
    """The Tiled queries of ``search`` (all must hold); ``UserInputError`` naming the
    first term that is not ``NAME OP VALUE``."""
    from labrig.catalog import tiled_ready

    tiled_ready()
    from tiled.queries import Comparison, Eq, Like, NotEq

    try:
        terms = shlex.split(search)
    except ValueError as exc:
        raise UserInputError(f"search {search!r}: {exc}; expected {HOW}") from None
    if not terms:
        raise UserInputError(f"search: empty; expected {HOW}")
    queries: list[Any] = []
    for term in terms:
        match = _TERM.match(term)
        if match is None or match.group(3)[:1] in "=<>~!":
            raise UserInputError(f"search term {term!r}: expected {HOW}")
        name, op, text = match.groups()
        key = metadata_key(name)
        # figures and parameters are numbers; names, models and serial numbers are text
        numeric = key.startswith(("figures.", "parameters.")) or op in _COMPARISON
        value = value_of(text) if numeric or text.lower() in ("true", "false") else text
        if op in _COMPARISON:
            if isinstance(value, (bool, str)):
                raise UserInputError(f"search term {term!r}: {op} needs a number, got {text!r}")
            queries.append(Comparison(_COMPARISON[op], key, value))
        elif op == "~":
            queries.append(Like(key, f"%{text}%"))
        elif op == "=":
            queries.append(Eq(key, value))
        else:
            queries.append(NotEq(key, value))
    return queries


def search(node: Any, text: str) -> Any:
    """``node`` narrowed to the runs matching ``text``."""
    for query in parse(text):
        node = node.search(query)
    return node
