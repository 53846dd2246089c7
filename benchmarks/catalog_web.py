"""The web view's run list over a catalogue of 10 000 runs: time to the first page.

A catalogue database is filled with N run nodes whose metadata is what the catalogue
records for a real run file (``labrig.catalog.metadata.run_metadata`` of a simulated
J-V-L run and a simulated solar-cell run, varied per node: sample, operator, start
time, peak EQE / PCE), written straight into Tiled's SQLite catalogue (the run list
reads metadata only, so the nodes carry no data).  ``labrig catalog serve``'s server
then serves it on loopback, and the script times, median of ``--repeat``:

* the web view's first page (``GET /view/``: newest 50 runs, count, headline figures,
  HTML) and a filtered first page (procedure, sample text, peak EQE threshold);
* the baseline, in the same run: the same page through Tiled's own client (the search,
  the count and the 50 nodes' metadata; what the page needs, without the web view).

    .venv/bin/python benchmarks/catalog_web.py [--runs 10000] [--repeat 7]

Target: the web run list's first page <= 1 s.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import datetime as dt
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "labrig"))

FILTER = {"procedure": "jvl", "sample": "NSA", "figure": "peak_eqe", "above": "20"}


def template_metadata(tmp: Path) -> list[dict]:
    """The catalogue metadata of two real simulated runs (J-V-L and solar J-V)."""
    from report_runs import make_run

    from labrig.catalog.metadata import run_metadata
    from labrig.store import load_run

    return [run_metadata(load_run(make_run(p, tmp / p))) for p in ("jvl", "solar-jv")]


def varied(templates: list[dict], i: int) -> dict:
    """Run ``i``'s metadata: a template with its own sample, operator, start time and
    headline figure (peak EQE 10-30 %, PCE 5-15 %), spread evenly."""
    samples = ("NSA 0.6 M red", "control red", "PbS QD 950 nm", "NSA 0.3 M green")
    md = copy.deepcopy(templates[i % len(templates)])
    md["sample"] = f"{samples[i % len(samples)]} #{i}"
    md["operator"] = ("ana", "ben", "chen")[i % 3]
    start = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(minutes=37 * i)
    md["start_time"] = start.isoformat(timespec="milliseconds")
    figures = md["figures"]
    if "peak_eqe" in figures:
        figures["peak_eqe"] = 10.0 + (i * 7919 % 2000) / 100.0
    if "reverse_pce" in figures:
        figures["reverse_pce"] = 5.0 + (i * 104729 % 1000) / 100.0
    md["file"] = f"run_{i:05d}.h5"
    return md


def fill(database: str, storage: Path, templates: list[dict], runs: int) -> float:
    """N run nodes under the catalogue's root, in one transaction (Tiled's own ORM
    rows, as its ``create_node`` writes them one by one); returns nodes per second."""
    from tiled.catalog import from_uri, orm

    async def go() -> None:
        tree = from_uri(database, writable_storage=[str(storage)], init_if_not_exists=True)
        await tree.startup()
        try:
            async with tree.context.session() as db:
                for i in range(runs):
                    db.add(
                        orm.Node(
                            key=f"run_{i:05d}", parent=tree.node.id, specs=[],
                            metadata_=varied(templates, i), structure_family="container",
                        )
                    )  # fmt: skip
                await db.commit()
        finally:
            await tree.shutdown()

    start = time.perf_counter()
    asyncio.run(go())
    return runs / (time.perf_counter() - start)


def median_s(fn, repeat: int) -> float:
    fn()  # warm: the first request of a kind builds its client, imports, caches
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()

    from labrig.catalog import tiled_ready

    tiled_ready()
    import httpx
    from tiled.client import from_uri
    from tiled.queries import Comparison, Eq, Like

    from labrig.catalog.server import Server

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        templates = template_metadata(tmp / "templates")
        served = tmp / "served"
        (served / ".labrig-catalog" / "data").mkdir(parents=True)
        database = f"sqlite:///{served / '.labrig-catalog' / 'catalog.db'}"
        rate = fill(database, served / ".labrig-catalog" / "data", templates, args.runs)
        print(f"catalogue: {args.runs} run nodes written at {rate:.0f}/s")
        server = Server(served, port=0, public=True, watch=False).start()
        try:
            view = server.uri.removesuffix("/api/v1") + "/view/"
            client = from_uri(server.uri)
            http = httpx.Client(timeout=60)

            def web(params=None) -> None:
                response = http.get(view, params=params)
                response.raise_for_status()
                assert response.text.count('<tr class="run ') == 50, "not a full page"

            def tiled(filtered: bool = False) -> None:
                node = client
                if filtered:
                    node = node.search(Eq("procedure", "jvl")).search(Like("sample", "%NSA%"))
                    node = node.search(Comparison("gt", "figures.peak_eqe", 20.0))
                node = node.sort(("start_time", -1))
                len(node)
                page = [value.metadata for _, value in node.items()[0:50]]
                assert len(page) == 50

            rows = []
            for name, web_fn, base_fn in (
                ("first page", web, tiled),
                ("filtered first page", lambda: web(FILTER), lambda: tiled(True)),
            ):
                t_web, t_base = median_s(web_fn, args.repeat), median_s(base_fn, args.repeat)
                rows.append((name, t_web, t_base))
            for name, t_web, t_base in rows:
                verdict = "yes" if t_web <= 1.0 else "NO"
                print(
                    f"web run list, {name}: {t_web:.3f} s (Tiled client, same page: "
                    f"{t_base:.3f} s; ratio {t_web / t_base:.2f}); target <= 1 s: {verdict}"
                )
        finally:
            server.stop()


if __name__ == "__main__":
    main()
