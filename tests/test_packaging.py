"""The installed package is the source tree: every package and data file is in pyproject.

The package list in pyproject is explicit (``drivers/``, ``procedures/``... install under
``labrig.``), so a new subpackage or template left out of it works in the editable
install the tests use and is missing from a wheel.  These tests walk the tree instead.
"""

from __future__ import annotations

from fnmatch import fnmatch
from pathlib import Path

from setuptools.config.pyprojecttoml import read_configuration

ROOT = Path(__file__).resolve().parents[1]
SETUPTOOLS = read_configuration(ROOT / "pyproject.toml", expand=False)["tool"]["setuptools"]


def _source_packages() -> dict[str, Path]:
    """Every importable package under each mapped directory, by its installed name."""
    found = {}
    for name, directory in SETUPTOOLS["package-dir"].items():
        base = ROOT / directory
        for init in base.rglob("__init__.py"):
            parts = init.parent.relative_to(base).parts
            if "__pycache__" in parts:
                continue
            found[".".join((name, *parts))] = init.parent
    return found


def _installed_directories() -> dict[str, Path]:
    """The directory of every package pyproject lists (data-only ones included)."""
    mapped = SETUPTOOLS["package-dir"]
    found = {}
    for name in SETUPTOOLS["packages"]:
        top = max((m for m in mapped if name == m or name.startswith(m + ".")), key=len)
        rest = name[len(top) :].lstrip(".")
        found[name] = ROOT / mapped[top] / Path(*rest.split(".") if rest else ())
    return found


def test_every_listed_package_is_a_directory_of_the_tree():
    """A data-only directory is listed as a package; a listed name must be there."""
    absent = sorted(n for n, d in _installed_directories().items() if not d.is_dir())
    assert not absent, f"listed in pyproject but not in the tree: {absent}"


def test_every_package_in_the_tree_is_installed():
    missing = sorted(set(_source_packages()) - set(SETUPTOOLS["packages"]))
    assert not missing, f"add to [tool.setuptools] packages in pyproject.toml: {missing}"


def test_every_data_file_of_a_package_is_installed():
    packages = {**_source_packages(), **_installed_directories()}
    patterns = SETUPTOOLS.get("package-data", {})
    missing = []
    for name, directory in packages.items():
        for path in directory.rglob("*"):
            if path.is_dir() or path.suffix in (".py", ".pyc") or "__pycache__" in path.parts:
                continue
            owner = max((p for p in packages if path.is_relative_to(packages[p])), key=len)
            if owner != name:
                continue
            relative = path.relative_to(directory).as_posix()
            if not any(fnmatch(relative, glob) for glob in patterns.get(name, ())):
                missing.append(f"{name}: {relative}")
    assert not missing, f"add to [tool.setuptools.package-data]: {missing}"
