"""Procedures never open files: what they need from earlier runs comes in the run
context the runner reads for them with the store's one reader."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import labrig.procedures
from labrig.config import load_config
from labrig.errors import ParameterError
from labrig.procedure import RunContext
from labrig.procedures.pulsed_el import PulsedELProcedure
from labrig.runner import read_context

#: what opening a file would take: the store's reader (``RunData`` for type hints is
#: fine, under TYPE_CHECKING), h5py, or the reader's entry points by name
FORBIDDEN = {"h5py", "labrig.store.reader", "labrig.store.access"}
READERS = {"read_run", "load_run", "open_run_file"}


def _imports(path: Path) -> list[tuple[str, set[str]]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(alias.name, set()) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.append((node.module, {alias.name for alias in node.names}))
    return found


def test_no_procedure_imports_a_reader_of_run_files():
    offenders = []
    for path in sorted(Path(labrig.procedures.__path__[0]).glob("*.py")):
        for module, names in _imports(path):
            if module in FORBIDDEN or (module.startswith("labrig.store") and names & READERS):
                offenders.append(f"{path.name}: {module} {sorted(names)}")
    assert offenders == []


def test_context_holds_the_run_files_the_procedure_names(tmp_path):
    from labrig.store import RunStore

    store = RunStore.create(
        tmp_path,
        procedure="jvl",
        sample="ref",
        columns=PulsedELProcedure.COLUMNS[:1],
        signal="",
        axis="",
        parameters={},
        config_text="",
        simulated=True,
    )
    store.close("finished")
    proc = PulsedELProcedure(dc_reference="file", dc_file=str(store.path))
    context = read_context(proc)
    assert context.previous is None and context.reference.path == store.path
    assert context.reference.procedure == "jvl" and context.reference.status == "finished"
    proc.context = context  # a run file without J-V-L columns is refused, naming them
    with pytest.raises(ParameterError, match="missing column\\(s\\) voltage, current"):
        proc.validate(load_config("sim"))
    assert read_context(PulsedELProcedure()) == RunContext()  # nothing named, nothing read
