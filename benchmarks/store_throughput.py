"""Store throughput: rows/s and 2048-pixel spectra/s through ``labrig.store.RunStore``
(crash-safe: SWMR file, a flush at least every 0.5 s, a background flusher) against raw
h5py appending the same data, measured in the same run.

The raw baseline is the fast hand-written logger a student would write: the same
chunked, resizable datasets, rows collected in memory and written 1024 at a time (one
spectrum batch of 32), no SWMR and no flushing -- so nothing of it would survive a crash.
labrig receives rows one at a time, as procedures emit them.

    .venv/bin/python benchmarks/store_throughput.py [--rows 300000] [--spectra 3000] [--repeat 3]

Targets: labrig / raw >= 0.8 for both, >= 50 000 rows/s and >= 1000 spectra/s.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

from labrig.interfaces import Spectrum
from labrig.procedures.jvl import JVLProcedure
from labrig.store import RunStore

COLUMNS = JVLProcedure.COLUMNS  # 13 columns: a J-V-L row
PIXELS = 2048
ROW_BATCH = 1024
SPECTRUM_BATCH = 32
SPECTRUM_META = {
    "step": "i8",
    "integration_time_s": "f8",
    "scans_averaged": "i4",
    "saturated": "i1",
    "dark_subtracted": "i1",
}


def _rows(n: int) -> list[dict]:
    rng = np.random.default_rng(0)
    values = rng.normal(size=(n, len(COLUMNS)))
    return [
        {
            c.name: (int(v) if c.dtype.startswith("i") else float(v))
            for c, v in zip(COLUMNS, row, strict=True)
        }
        for row in values
    ]


def _store(out: Path) -> RunStore:
    return RunStore.create(
        out,
        procedure="bench",
        sample="store",
        columns=COLUMNS,
        signal="luminance",
        axis="voltage",
        parameters={},
        config_text="name: bench\n",
        simulated=True,
        spectrum_pixels=PIXELS,
    )


def labrig_rows(out: Path, rows: list[dict]) -> float:
    store = _store(out)
    t0 = time.perf_counter()
    for row in rows:
        store.append_row(row)
    store.flush()
    elapsed = time.perf_counter() - t0
    store.close("finished")
    return len(rows) / elapsed


def raw_rows(out: Path, rows: list[dict]) -> float:
    path = out / "raw_rows.h5"
    with h5py.File(path, "w", libver="latest") as f:
        grp = f.create_group("entry/data")
        dsets = {
            c.name: grp.create_dataset(
                c.name, shape=(0,), maxshape=(None,), chunks=(ROW_BATCH,), dtype=c.dtype
            )
            for c in COLUMNS
        }
        t0 = time.perf_counter()
        pending: dict[str, list] = {c.name: [] for c in COLUMNS}
        for k, row in enumerate(rows, 1):
            for name, values in pending.items():
                values.append(row[name])
            if k % ROW_BATCH == 0 or k == len(rows):
                for name, values in pending.items():
                    ds = dsets[name]
                    n = ds.shape[0]
                    ds.resize((n + len(values),))
                    ds[n:] = values
                    values.clear()
        elapsed = time.perf_counter() - t0
    return len(rows) / elapsed


def _spectra(n: int) -> tuple[np.ndarray, list[Spectrum]]:
    rng = np.random.default_rng(1)
    wl = np.linspace(340.0, 1030.0, PIXELS)
    base = rng.normal(1000.0, 30.0, size=(16, PIXELS))
    return wl, [Spectrum(wl, base[k % 16], 0.01, dark_subtracted=True) for k in range(n)]


def labrig_spectra(out: Path, spectra: list[Spectrum]) -> float:
    store = _store(out)
    t0 = time.perf_counter()
    for step, spectrum in enumerate(spectra):
        store.append_spectrum(step, spectrum)
    store.flush()
    elapsed = time.perf_counter() - t0
    store.close("finished")
    return len(spectra) / elapsed


def raw_spectra(out: Path, wl: np.ndarray, spectra: list[Spectrum]) -> float:
    path = out / "raw_spectra.h5"
    with h5py.File(path, "w", libver="latest") as f:
        grp = f.create_group("entry/spectra")
        grp["wavelength_nm"] = wl
        counts = grp.create_dataset(
            "counts",
            shape=(0, PIXELS),
            maxshape=(None, PIXELS),
            chunks=(SPECTRUM_BATCH, PIXELS),
            dtype="f8",
        )
        # the same per-spectrum data labrig keeps: step, exposure, scans, flags
        meta = {
            name: grp.create_dataset(
                name, shape=(0,), maxshape=(None,), chunks=(1024,), dtype=dtype
            )
            for name, dtype in SPECTRUM_META.items()
        }
        t0 = time.perf_counter()
        batch: list[Spectrum] = []
        for k, spectrum in enumerate(spectra, 1):
            batch.append(spectrum)
            if k % SPECTRUM_BATCH == 0 or k == len(spectra):
                n = counts.shape[0]
                counts.resize((n + len(batch), PIXELS))
                counts[n:] = np.stack([np.asarray(s.counts, "f8") for s in batch])
                values = {
                    "step": np.arange(n, n + len(batch)),
                    "integration_time_s": [s.integration_time_s for s in batch],
                    "scans_averaged": [s.scans_averaged for s in batch],
                    "saturated": [s.saturated for s in batch],
                    "dark_subtracted": [s.dark_subtracted for s in batch],
                }
                for name, ds in meta.items():
                    ds.resize((n + len(batch),))
                    ds[n:] = values[name]
                batch.clear()
        elapsed = time.perf_counter() - t0
    return len(spectra) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=300_000)
    parser.add_argument("--spectra", type=int, default=3000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    rows = _rows(args.rows)
    wl, spectra = _spectra(args.spectra)
    results: dict[str, list[float]] = {"lr": [], "rr": [], "ls": [], "rs": []}
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(args.repeat):  # interleaved, so drifts in machine load hit both
            out = Path(tmp) / str(k)
            out.mkdir()
            results["rr"].append(raw_rows(out, rows))
            results["lr"].append(labrig_rows(out, rows))
            results["rs"].append(raw_spectra(out, wl, spectra))
            results["ls"].append(labrig_spectra(out, spectra))
    med = {k: statistics.median(v) for k, v in results.items()}
    row_ratio, spec_ratio = med["lr"] / med["rr"], med["ls"] / med["rs"]
    print(f"store rows    ({args.rows} x {len(COLUMNS)} columns, median of {args.repeat}):")
    print(f"  labrig RunStore.append_row : {med['lr']:>10,.0f} rows/s   (target >= 50,000)")
    print(f"  raw h5py, 1024-row batches : {med['rr']:>10,.0f} rows/s")
    print(f"  ratio labrig/raw           : {row_ratio:10.2f}        (target >= 0.8)")
    print(f"store spectra ({args.spectra} x {PIXELS} pixels, median of {args.repeat}):")
    print(f"  labrig append_spectrum     : {med['ls']:>10,.0f} spectra/s (target >= 1000)")
    print(f"  raw h5py, 32-spectra chunks: {med['rs']:>10,.0f} spectra/s")
    print(f"  ratio labrig/raw           : {spec_ratio:10.2f}        (target >= 0.8)")
    ok = row_ratio >= 0.8 and spec_ratio >= 0.8 and med["lr"] >= 50_000 and med["ls"] >= 1000
    print("targets met" if ok else "TARGETS NOT MET")


if __name__ == "__main__":
    main()
