"""Bad-input fuzzing of the config loader: whatever the file holds, ``load_config`` either
returns a valid ``BenchConfig`` or raises ``ConfigError`` with a readable message (one
problem per line, each naming where) -- never another exception, never a traceback.

Inputs: random YAML-ish structures, the shipped configs mutated (a value replaced by one
of the wrong type or out of range, a key deleted, an unknown key added), and broken YAML
(the shipped text cut, or with random characters spliced in).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from labrig.config import BenchConfig, load_config, parse_yaml, shipped_config_dir
from labrig.errors import ConfigError

SHIPPED = sorted(p for p in shipped_config_dir().glob("*.yaml"))
FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
#: a message line longer than this is not something a person reads
MAX_LINE = 400

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**12), max_value=10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.sampled_from(["", "-1", "1e400", ".nan", "keithley2400", "sim", "red_cspbi3", "true"]),
)
keys = st.one_of(
    st.text(max_size=12),
    st.sampled_from(
        ["name", "instruments", "device", "calibration", "limits", "simulation", "smu",
         "driver", "resource", "simulated", "preset", "photodiode", "faults", "kind"]
    ),
)  # fmt: skip
structures = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(keys, children, max_size=5)
    ),
    max_leaves=25,
)


def _load(tmp_path: Path, text: str) -> BenchConfig | None:
    """load_config on ``text``; assert that a failure is a readable ConfigError."""
    path = tmp_path / "fuzzed.yaml"
    path.write_text(text, encoding="utf-8")
    try:
        return load_config(path)
    except ConfigError as exc:
        message = str(exc)
        lines = message.splitlines()
        assert lines, "an empty error message"
        for line in lines:
            assert line.strip(), f"a blank line in {message!r}"
            assert len(line) <= MAX_LINE, f"an unreadably long line: {line[:200]}..."
        return None


def _finite_numbers(value: Any, where: str = "config") -> None:
    """A config that loads holds no NaN anywhere (NaN passes every range check)."""
    if isinstance(value, float):
        assert not math.isnan(value), f"{where} is NaN but the config loaded"
    elif isinstance(value, dict):
        for k, v in value.items():
            _finite_numbers(v, f"{where}.{k}")
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _finite_numbers(v, f"{where}[{i}]")


def _check_loaded(cfg: BenchConfig | None) -> None:
    if cfg is not None:
        _finite_numbers(cfg.model_dump())


# ----------------------------------------------------------------------------- random
@FUZZ
@given(data=structures)
def test_random_structures(tmp_path: Path, data: Any) -> None:
    _check_loaded(_load(tmp_path, yaml.safe_dump(data, allow_unicode=True)))


# ----------------------------------------------------------------------------- mutated
def _paths(tree: Any, prefix: tuple = ()) -> list[tuple]:
    """Every key path in a YAML tree (dict keys and list indices)."""
    found = [prefix] if prefix else []
    if isinstance(tree, dict):
        for k, v in tree.items():
            found += _paths(v, (*prefix, k))
    elif isinstance(tree, list):
        for i, v in enumerate(tree):
            found += _paths(v, (*prefix, i))
    return found


def _parent(tree: Any, path: tuple) -> Any:
    for step in path[:-1]:
        tree = tree[step]
    return tree


bad_values = st.one_of(
    scalars,
    st.sampled_from([-1, 0, -0.0, 1e9, -1e9, 2**63, math.nan, math.inf, -math.inf, 211, 1.06]),
    st.lists(scalars, max_size=3),
    st.dictionaries(st.text(max_size=6), scalars, max_size=2),
)


@FUZZ
@given(
    shipped=st.sampled_from(SHIPPED),
    choice=st.randoms(use_true_random=False),
    how=st.sampled_from(["replace", "delete", "unknown key"]),
    value=bad_values,
    extra_key=st.text(min_size=1, max_size=10),
)
def test_mutated_shipped_configs(tmp_path, shipped, choice, how, value, extra_key) -> None:
    tree = parse_yaml(shipped.read_text())
    path = choice.choice(_paths(tree))
    parent = _parent(tree, path)
    if how == "replace":
        parent[path[-1]] = value
    elif how == "delete":
        del parent[path[-1]]
    else:
        target = parent[path[-1]] if isinstance(parent[path[-1]], dict) else parent
        if isinstance(target, dict):
            target.setdefault(extra_key, value)
    _check_loaded(_load(tmp_path, yaml.safe_dump(tree, allow_unicode=True)))


# ----------------------------------------------------------------------------- edges
def _numbers(tree: Any) -> list[tuple]:
    """Key paths of the numeric leaves (not booleans) of a tree."""
    return [
        p
        for p in _paths(tree)
        if isinstance(_parent(tree, p)[p[-1]], int | float)
        and not isinstance(_parent(tree, p)[p[-1]], bool)
    ]


def _refused(tmp_path: Path, text: str, *fragments: str) -> str:
    path = tmp_path / "edge.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, message
    return message


@FUZZ
@given(
    shipped=st.sampled_from(SHIPPED),
    choice=st.randoms(use_true_random=False),
    how=st.sampled_from(["true", "false", "text"]),
)
def test_a_number_given_as_a_boolean_or_text_is_refused(tmp_path, shipped, choice, how) -> None:
    tree = parse_yaml(shipped.read_text())
    path = choice.choice(_numbers(tree))
    parent = _parent(tree, path)
    parent[path[-1]] = {"true": True, "false": False, "text": str(parent[path[-1]])}[how]
    key = str(path[-1]) if isinstance(path[-1], str) else str(path[-2])
    _refused(tmp_path, yaml.safe_dump(tree), key, "Input should be a valid")


def _json_with_repeat(tree: Any, target: tuple, value: Any) -> str:
    """``tree`` as JSON (valid YAML), the mapping at ``target[:-1]`` holding its key
    ``target[-1]`` a second time, with ``value`` (no repeat for an empty ``target``)."""
    import json

    def emit(node: Any, here: tuple) -> str:
        if isinstance(node, dict):
            items = [f"{json.dumps(str(k))}: {emit(v, (*here, k))}" for k, v in node.items()]
            if target and here == target[:-1]:
                items.append(f"{json.dumps(str(target[-1]))}: {json.dumps(value)}")
            return "{" + ", ".join(items) + "}"
        if isinstance(node, list):
            return "[" + ", ".join(emit(v, (*here, i)) for i, v in enumerate(node)) + "]"
        if isinstance(node, float) and math.isinf(node):
            return ".inf" if node > 0 else "-.inf"  # YAML's spelling (JSON has none)
        return json.dumps(node.isoformat() if hasattr(node, "isoformat") else node)

    return emit(tree, ())


@FUZZ
@given(
    shipped=st.sampled_from(SHIPPED),
    choice=st.randoms(use_true_random=False),
    value=st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=5)),
)
def test_a_key_repeated_anywhere_is_refused(tmp_path, shipped, choice, value) -> None:
    tree = parse_yaml(shipped.read_text())
    keys = [p for p in _paths(tree) if isinstance(p[-1], str)]
    path = choice.choice(keys)
    _refused(tmp_path, _json_with_repeat(tree, path, value), f"key {path[-1]!r} given twice")


@FUZZ
@given(
    shipped=st.sampled_from(SHIPPED),
    field=st.sampled_from([("device", "sample"), ("name",), ("device", "description")]),
    text=st.text(max_size=10),
    bad=st.sampled_from(["\x00", "\udcff", "\ud800"]),  # NUL, lone surrogates
    at=st.floats(min_value=0, max_value=1),
)
def test_text_a_run_file_cannot_hold_is_refused(tmp_path, shipped, field, text, bad, at) -> None:
    """Written as JSON escapes (``\\u0000``, ``\\udcff``), which YAML reads back."""
    tree = parse_yaml(shipped.read_text())
    cut = int(at * len(text))
    _parent(tree, field)[field[-1]] = text[:cut] + bad + text[cut:]
    message = _refused(tmp_path, _json_with_repeat(tree, (), None), "allowed: UTF-8 text")
    assert len(message.splitlines()) == 1, message  # the only thing wrong


# ----------------------------------------------------------------------------- broken YAML
@FUZZ
@given(
    shipped=st.sampled_from(SHIPPED),
    cut=st.floats(min_value=0, max_value=1),
    junk=st.text(max_size=8),
    where=st.floats(min_value=0, max_value=1),
)
def test_broken_yaml(tmp_path, shipped, cut, junk, where) -> None:
    text = shipped.read_text()
    at = int(where * len(text))
    text = text[:at] + junk + text[at:]
    text = text[: max(1, int(len(text) * (0.5 + cut / 2)))]
    _check_loaded(_load(tmp_path, text))


@pytest.mark.parametrize(
    "text",
    [
        "",  # empty file
        "instruments: [",  # unclosed flow sequence
        "a: b: c",  # mapping in a plain scalar
        "\t- tab indented",
        "key: 'unterminated",
        "? [complex, key]\n: value",  # unhashable key
        "&a [*a]",  # recursive alias
        "- 1\n- 2",  # a list at the top
        "\x00binary",
    ],
)
def test_known_broken_files(tmp_path: Path, text: str) -> None:
    assert _load(tmp_path, text) is None


def test_unreadable_bytes(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("name: caf\xe9\n".encode("latin-1"))
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(path)


def test_shipped_configs_still_load() -> None:
    """The fuzzing starts from valid files (else it tests only the first error)."""
    for path in SHIPPED:
        assert isinstance(load_config(path), BenchConfig), path
