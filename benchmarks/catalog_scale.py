"""The lab catalogue at scale: register 10 000 run files, search them, and watch a
lifetime run stream into the server for an hour of simulated time.

* **Files**: synthetic but real run files, written by labrig's own writer (``RunStore``:
  the layout, SWMR, figures with units) in two worker processes: 60 % ``jvl``-like
  (J-V-L columns, 40 rows, peak EQE / luminance / CIE figures), the rest lifetime-like
  (two channel groups with T50 each); samples name a treatment (``NSA``, ``OA``...).
  Kept in ``--keep DIR`` between runs (made once).
* **Registration**: ``labrig catalog serve``'s own ``Registrar.scan`` into a fresh
  SQLite catalogue, files/s; baseline in the same run: ``load_run`` alone over the same
  files (the reading every registration does), so the ratio is what the catalogue adds.
* **Search**: ``procedure=jvl peak_eqe>20 sample~NSA`` through Tiled's HTTP API (count +
  first page of 100 keys), median of 7; baseline: the same filter in Python over the
  metadata already in memory.
* **Web run list** (hook for the web view): the first page of ``/view`` timed when the
  web view is installed.
* **Memory**: ``labrig catalog serve`` in its own process while ``labrig run lifetime
  --simulate`` (8 channels, 1 h at clock speed ``--speed``) writes into its directory;
  the server's RSS is sampled every second and printed per tenth of the run
  (``--viewer``: a client also reads the live run's data once a second).

    .venv/bin/python benchmarks/catalog_scale.py [--files 10000] [--keep /tmp/catalog-runs]
        [--skip-memory | --memory-only [--viewer]]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SAMPLES = ("NSA 0.6 M", "NSA 0.3 M", "OA control", "PEABr 5 %", "bare")


def make_files(args: tuple[Path, int, int]) -> int:
    """Files ``start..stop`` of the synthetic set, each a real run file."""
    from labrig.procedure import Column
    from labrig.store import RunStore

    out, start, stop = args
    rng = np.random.default_rng(start)
    jvl_cols = [
        Column("voltage", "V", "voltage"),
        Column("current_density", "mA/cm^2", "current density"),
        Column("luminance", "cd/m^2", "luminance"),
        Column("eqe", "%", "EQE"),
    ]
    life_cols = [Column("time", "s", "time"), Column("luminance", "cd/m^2", "luminance")]
    for i in range(start, stop):
        sample = f"{SAMPLES[i % len(SAMPLES)]} #{i}"
        lifetime = i % 5 >= 3
        store = RunStore.create(
            out / f"{i // 1000:02d}",
            procedure="lifetime" if lifetime else "jvl",
            sample=sample,
            columns=life_cols if lifetime else jvl_cols,
            signal="luminance",
            axis="time" if lifetime else "voltage",
            parameters={"index": (i, "")},
            config_text="name: synthetic\n",
            simulated=True,
            groups=("channel_01", "channel_02") if lifetime else (),
            resolved_config={"name": (f"bench {i % 3}", ""), "device": {"kind": ("led", "")}},
            flush_interval_s=60.0,
        )
        if lifetime:
            t = np.linspace(0, 3600, 40)
            for ch in ("channel_01", "channel_02"):
                store.append_rows({"time": t, "luminance": 1000 * np.exp(-t / 5000)}, ch)
                store.set_analysis({"T50": (float(rng.uniform(1, 50)), "h")}, ch)
        else:
            v = np.linspace(0, 6, 40)
            store.append_rows(
                {"voltage": v, "current_density": v**3, "luminance": 100 * v**4, "eqe": v * 4}
            )
            store.set_analysis(
                {
                    "peak_eqe": (float(rng.uniform(5, 30)), "%"),
                    "max_luminance": (float(rng.uniform(1e3, 1e4)), "cd/m^2"),
                    "cie_x": (float(rng.uniform(0.6, 0.7)), ""),
                }
            )
        store.close("finished")
    return stop - start


def generate(out: Path, n: int) -> float:
    """Top ``out`` up to ``n`` files; seconds taken (0 when all were there)."""
    have = len(list(out.rglob("*.h5"))) if out.exists() else 0
    if have >= n:
        return 0.0
    out.mkdir(parents=True, exist_ok=True)
    step = 250
    jobs = [(out, a, min(a + step, n)) for a in range(have, n, step)]
    t0 = time.perf_counter()
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        made = sum(pool.imap_unordered(make_files, jobs))
    assert made == n - have
    return time.perf_counter() - t0


def register(out: Path, files: list[Path]) -> dict[str, float]:
    from labrig.catalog.query import parse
    from labrig.catalog.server import Server
    from labrig.store import load_run

    sample = files[:: max(1, len(files) // 1000)]
    t0 = time.perf_counter()
    loaded = [load_run(p) for p in sample]
    read_rate = len(sample) / (time.perf_counter() - t0)

    shutil.rmtree(out / ".labrig-catalog", ignore_errors=True)
    server = Server(out, port=0, watch=False).start(scan=False)
    try:
        t0 = time.perf_counter()
        count = server.registrar.scan()
        reg_rate = count / (time.perf_counter() - t0)
        assert count == len(files), (count, len(files))

        text = "procedure=jvl peak_eqe>20 sample~NSA"
        from labrig.catalog.publish import connect

        root = connect(server.uri, server.key)
        times, found = [], 0
        for _ in range(7):
            t0 = time.perf_counter()
            node = root
            for query in parse(text):
                node = node.search(query)
            found = len(node)
            first = list(node.keys()[:100])
            times.append(time.perf_counter() - t0)
        assert len(first) == min(100, found)
        from labrig.catalog.metadata import run_metadata

        metas = [run_metadata(r) for r in loaded] * (len(files) // len(sample))
        t0 = time.perf_counter()
        hits = [
            m
            for m in metas
            if m["procedure"] == "jvl" and m["figures"].get("peak_eqe", 0) > 20
            and "nsa" in m["sample"].lower()
        ]  # fmt: skip
        scan_s = time.perf_counter() - t0
        web = first_page(server)
    finally:
        server.stop()
    # a restart on the same catalogue, nothing changed: what `labrig catalog serve DIR`
    # does before it answers, the second time
    server = Server(out, port=0, watch=False).start(scan=False)
    try:
        t0 = time.perf_counter()
        server.registrar.scan()
        rescan_s = time.perf_counter() - t0
    finally:
        server.stop()
    return {
        "files": count,
        "read_rate": read_rate,
        "reg_rate": reg_rate,
        "search_s": statistics.median(times),
        "found": found,
        "python_filter_s": scan_s,
        "python_hits": len(hits),
        "web_first_page_s": web,
        "rescan_s": rescan_s,
    }


def first_page(server) -> float:
    """The web view's run list, first page, in s (NaN when the web view is not there)."""
    import httpx

    from labrig.catalog.server import VIEW_PREFIX

    if not any(getattr(r, "path", "") == VIEW_PREFIX for r in server.app.router.routes):
        return float("nan")
    url = server.uri.removesuffix("/api/v1") + VIEW_PREFIX + "/"
    headers = {"Authorization": f"Apikey {server.key}"}
    httpx.get(url, headers=headers, timeout=30)  # warm
    t0 = time.perf_counter()
    reply = httpx.get(url, headers=headers, timeout=30)
    elapsed = time.perf_counter() - t0
    reply.raise_for_status()
    return elapsed


def read_live(client) -> None:
    """What a viewer of the live run asks: every column of every data group, now."""
    for key in client:
        run = client[key]
        for group in run.metadata.get("groups", []):
            for column in run[group].values():
                column.read()


def memory(hours: float, speed: float, viewer: bool) -> dict[str, float]:
    """The server's RSS while a lifetime run streams into its directory (``viewer``: and
    a client reads the live run's data once a second)."""
    import psutil

    tmp = Path(tempfile.mkdtemp(prefix="catalog-memory-"))
    runs = tmp / "runs"
    runs.mkdir()
    config = tmp / "rig.yaml"
    from labrig.config import resolve_config_path

    text = resolve_config_path("sim").read_text()
    config.write_text(text.replace("clock_speed: .inf", f"clock_speed: {speed}"))
    env = {**os.environ, "LABRIG_CATALOG_API_KEY": "benchmark0key"}
    server = subprocess.Popen(
        [sys.executable, "-m", "labrig", "catalog", "serve", str(runs), "--port", "0"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    try:
        first = server.stdout.readline()
        assert first.startswith("serving"), "server did not start"
        from labrig.catalog.publish import connect

        client = connect(first.split(" at ")[1].strip(), env["LABRIG_CATALOG_API_KEY"])
        proc = psutil.Process(server.pid)
        time.sleep(2.0)
        base = proc.memory_info().rss
        run = subprocess.Popen(
            [
                sys.executable, "-m", "labrig", "run", "lifetime", "--config", str(config),
                "-o", str(runs), "--no-progress", "--set", f"max_duration={hours}",
                "--set", "settle_time=1", "--set", "ramp_dwell=0.1",
                "--set", "max_interval=10",
            ],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        samples = []
        t0 = time.monotonic()
        while run.poll() is None:
            samples.append((time.monotonic() - t0, proc.memory_info().rss))
            if viewer:
                try:
                    read_live(client)
                except Exception:  # noqa: BLE001 - a file between two writes: next second
                    pass
            time.sleep(1.0)
        time.sleep(3.0)  # the watcher takes the closed file
        samples.append((time.monotonic() - t0, proc.memory_info().rss))
        out = run.stdout.read()
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(tmp, ignore_errors=True)
    rss = np.array([r for _, r in samples]) / 1e6
    half = len(rss) // 2
    return {
        "run_s": samples[-1][0],
        "before_mb": base / 1e6,
        "first_half_mb": float(rss[:half].max()) if half else float("nan"),
        "second_half_mb": float(rss[half:].max()),
        "end_mb": float(rss[-1]),
        "tenths_mb": [float(part.max()) for part in np.array_split(rss, 10) if len(part)],
        "run_output": out.strip().splitlines()[0] if out.strip() else "",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--keep", type=Path, default=Path(tempfile.gettempdir()) / "catalog-runs")
    parser.add_argument("--hours", type=float, default=1.0, help="simulated lifetime run")
    parser.add_argument("--speed", type=float, default=60.0, help="simulated clock speed")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--memory-only", action="store_true", help="no files, no registration")
    parser.add_argument("--viewer", action="store_true",
                        help="while the lifetime run streams, a client reads its data each second")  # fmt: skip
    args = parser.parse_args()

    print(f"{time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC, load average (1, 5, 15 min): "
          + ", ".join(f"{x:.2f}" for x in os.getloadavg()))  # fmt: skip
    if not args.memory_only:
        made_s = generate(args.keep, args.files)
        files = sorted(p for p in args.keep.rglob("*.h5") if ".labrig-catalog" not in p.parts)
        if made_s:
            print(f"topped up to {len(files)} run files in {made_s:.0f} s")
        r = register(args.keep, files)
        print(f"registration: {r['reg_rate']:.1f} files/s ({r['files']} files; target >= 50); "
              f"load_run alone {r['read_rate']:.1f} files/s; ratio {r['reg_rate'] / r['read_rate']:.2f}")  # fmt: skip
        print(f"search over {r['files']} runs: {r['search_s'] * 1000:.0f} ms median of 7 "
              f"({r['found']} found; target <= 300 ms); Python filter over in-memory metadata "
              f"{r['python_filter_s'] * 1000:.1f} ms ({r['python_hits']} hits); "
              f"ratio {r['search_s'] / r['python_filter_s']:.1f}")  # fmt: skip
        print(f"restart over {r['files']} registered, unchanged files: {r['rescan_s']:.1f} s "
              f"({r['files'] / r['rescan_s']:.0f} files/s)")  # fmt: skip
        web = r["web_first_page_s"]
        print("web run list first page: " + ("web view not installed" if np.isnan(web)
              else f"{web * 1000:.0f} ms (target <= 1000 ms)"))  # fmt: skip
    if not args.skip_memory:
        m = memory(args.hours, args.speed, args.viewer)
        print(f"server RSS while a {args.hours:g} h lifetime run streamed in"
              + (" and a client read it each second" if args.viewer else "")
              + f" ({m['run_s']:.0f} s at "
              f"clock speed {args.speed:g}): {m['before_mb']:.1f} MB before, max "
              f"{m['first_half_mb']:.1f} MB first half, {m['second_half_mb']:.1f} MB second half, "
              f"{m['end_mb']:.1f} MB at the end; run: {m['run_output']}")  # fmt: skip
        print("  max RSS per tenth of the run, MB: "
              + " ".join(f"{mb:.1f}" for mb in m["tenths_mb"]))  # fmt: skip
    print("load average at the end (1, 5, 15 min): "
          + ", ".join(f"{x:.2f}" for x in os.getloadavg()))  # fmt: skip


if __name__ == "__main__":
    main()
