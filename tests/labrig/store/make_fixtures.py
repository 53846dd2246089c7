"""Writes the run files of an older format under ``v<N>/`` with the code that wrote it.

Not a test: run once with the labrig that wrote format N first on the path.  Format 1:
commit 396211d (the last to write ``labrig-run/1``), e.g.::

    git archive 396211d | tar -x -C /tmp/v1src
    mkdir /tmp/v1site && cp -r /tmp/v1src/labrig /tmp/v1site/ && for d in procedures \
        drivers simulators configs; do cp -r /tmp/v1src/$d /tmp/v1site/labrig/$d; done
    PYTHONPATH=/tmp/v1site python tests/labrig/store/make_fixtures.py 1

Format 2: commit 80a7362 (the last to write ``labrig-run/2``), the same way with
``... make_fixtures.py 2``.

The files are stored gzip-compressed (mostly unwritten chunk space): ``lifetime.h5.gz``
(two channels, channel 2 ended "L0 not reachable", then the rig link lost: failed, so it
can be resumed), ``jvl.h5.gz`` (format 1: dark noise in the log only), ``solar-jv.h5.gz``
(format 1: columns ``V``/``I``/``J``/``P``).
"""

from __future__ import annotations

import gzip
import shutil
import sys
import tempfile
from pathlib import Path

import yaml

from labrig.config import parse_config, shipped_config_dir
from labrig.procedures.jvl import JVLProcedure
from labrig.procedures.lifetime import LifetimeProcedure
from labrig.procedures.solar_jv import SolarJVProcedure
from labrig.runner import run_procedure
from labrig.store import FILE_FORMAT

HERE = Path(__file__).parent


def _config(name: str, **edit):
    data = yaml.safe_load((shipped_config_dir() / f"{name}.yaml").read_text())
    for section, values in edit.items():
        data[section] = {**data.get(section, {}), **values}
    return parse_config(data)


def main(version: str) -> None:
    assert FILE_FORMAT == f"labrig-run/{version}", FILE_FORMAT
    here = HERE / f"v{version}"
    sim = yaml.safe_load((shipped_config_dir() / "sim.yaml").read_text())
    sim["instruments"]["lifetime"]["channels"] = 2
    sim["simulation"]["faults"] = {"lifetime": [{"kind": "disconnect", "after": 200}]}
    runs = {
        "lifetime": (
            LifetimeProcedure(),
            {
                "drive": "luminance",
                "levels": "1000,1e7",
                "reconnect_timeout": 0.0,
                "ramp_dwell": 0.5,
            },
            parse_config(sim),
        ),
        "jvl": (
            JVLProcedure(),
            {"spectra": "none", "start_voltage": 2.0, "stop_voltage": 4.0, "step_voltage": 0.25},
            _config("sim"),
        ),
        "solar-jv": (
            SolarJVProcedure(),
            {"start_voltage": -0.7, "stop_voltage": 0.1, "step_voltage": 0.05},
            _config("solar_sim"),
        ),
    }
    with tempfile.TemporaryDirectory() as tmp:
        for name, (proc, params, config) in runs.items():
            proc.set_parameters(params)
            result = run_procedure(proc, config, output_dir=Path(tmp) / name, progress=False)
            print(name, result.status, result.reason, result.path.stat().st_size)
            with result.path.open("rb") as src, gzip.open(here / f"{name}.h5.gz", "wb") as dst:
                shutil.copyfileobj(src, dst)


if __name__ == "__main__":
    main(sys.argv[1])
