"""labrig.bluesky.plans: one plan per registered measurement, with the CLI's parameters;
run in this process on the in-process simulated bench (its clock only moves when slept
on, so a plan and ``run_procedure`` with the same seed give the same figures exactly)."""

from __future__ import annotations

import inspect
import threading

import pytest
from bluesky import RunEngine
from bluesky.utils import RunEngineInterrupted
from event_model import DocumentNames, schema_validators

from labrig import registry
from labrig.bluesky import plans
from labrig.bluesky.link import BenchLink
from labrig.config import load_config
from labrig.errors import ParameterError, UserInputError
from labrig.parameters import parameter_objects
from labrig.runner import procedure_for, run_procedure
from labrig.store import load_run

JVL = {"stop_voltage": 4.0, "step_voltage": 0.1, "spectra": "none", "dark_readings": 3}


def test_every_measurement_is_a_plan_with_the_procedures_parameters():
    made = plans.plans()
    assert list(made) == [m.name.replace("-", "_") for m in registry.measurements()]
    for measurement in registry.measurements():
        plan = getattr(plans, measurement.name.replace("-", "_"))
        params = parameter_objects(measurement.procedure_class())
        signature = inspect.signature(plan)
        assert list(signature.parameters) == ["sample", *params, "md"]
        for name, param in params.items():
            assert signature.parameters[name].default == param.default
    stop = plans.jvl._custom_parameter_annotation_["parameters"]["stop_voltage"]
    assert stop == {"description": "Stop voltage [V]", "min": -210, "max": 210}


def test_a_plan_refuses_as_labrig_run_does_before_anything_is_touched():
    config = load_config("sim")
    with pytest.raises(ParameterError) as plan_said:
        plans.check_request(registry.measurement("jvl"), config, {"stop_voltage": 250})
    with pytest.raises(ParameterError) as cli_said:
        procedure_for(registry.measurement("jvl"), config, {"stop_voltage": "250"}, "--set ")
    assert (
        str(plan_said.value) == "jvl: stop_voltage=250: above the maximum; allowed: -210 to 210 V"
    )
    assert str(cli_said.value) == "--set " + str(plan_said.value).removeprefix("jvl: ")


def test_a_plan_on_a_runengine_without_labrig_says_what_to_do():
    with pytest.raises(UserInputError, match=r"jvl: .*plans.install\(RE, link\) first"):
        RunEngine(call_returns_result=True)(plans.jvl("dev1", **JVL))


def test_jvl_plan_writes_labrigs_file_and_documents_with_runs_figures(tmp_path):
    RE = RunEngine()
    link = BenchLink(load_config("sim"), guard=False)
    plans.install(RE, link, tmp_path / "plan")
    docs: list[tuple[str, dict]] = []
    RE.subscribe(lambda name, doc: docs.append((name, doc)))
    try:
        RE(plans.jvl("dev1", md={"operator_note": "queued"}, **JVL))
        assert link.call_now(lambda: link.instrument("smu").output_enabled) is False
    finally:
        link.close()
    (planned,) = (tmp_path / "plan").glob("*.h5")
    run = load_run(planned)
    assert (run.run.procedure, run.run.sample, run.run.status) == ("jvl", "dev1", "finished")
    names = [n for n, _ in docs]
    assert names[0] == "start" and names[-1] == "stop" and names.count("start") == 1
    for name, doc in docs:
        schema_validators[DocumentNames(name)].validate(doc)
    assert docs[0][1]["operator_note"] == "queued" and docs[0][1]["run_file"] == str(planned)
    assert names.count("event") == run.rows() + 1  # every row, and the figures' event
    # the same J-V-L through labrig's runner on a fresh simulated bench, same seed
    config = load_config("sim")
    direct = run_procedure(
        procedure_for(registry.measurement("jvl"), config, JVL),
        config,
        output_dir=tmp_path / "run",
        sample="dev1",
        progress=False,
    )
    assert direct.status == "finished"
    assert run.figures() == load_run(direct.path).figures()


@pytest.mark.parametrize("stop", ["abort", "halt"])
def test_a_paused_jvl_plan_is_held_off_and_abort_or_halt_ends_it_off(tmp_path, stop):
    RE = RunEngine(call_returns_result=True)
    link = BenchLink(load_config("sim"), guard=False)
    plans.install(RE, link, tmp_path)
    rows: list[dict] = []

    def pause_at_the_fifth_row(name: str, doc: dict) -> None:
        if name == "event" and "current" in doc["data"]:
            rows.append(doc["data"])
            if len(rows) == 5:
                threading.Thread(target=RE.request_pause).start()

    RE.subscribe(pause_at_the_fifth_row)
    slow = {**JVL, "stop_voltage": 6.0, "step_voltage": 0.01}
    try:
        with pytest.raises(RunEngineInterrupted):
            RE(plans.jvl("dev1", **slow))
        smu = link.simulation.instruments["smu"]  # what the 2400 has switched
        assert smu.output is False  # held at a point, ramped off
        held = len(rows)
        assert 5 <= held < 601
        getattr(RE, stop)()
        assert smu.output is False
        assert len(rows) == held  # nothing measured after the pause
    finally:
        link.close()
    (file,) = tmp_path.glob("*.h5")
    run = load_run(file).run
    assert (run.status, run.abort_reason) == ("aborted", "stopped by the RunEngine")
