"""The HDF5 run file: one self-describing, NeXus-flavoured file per run.

* ``layout``: what the file looks like (names, groups, attributes, dtypes, format version);
* ``writer``: ``RunStore``, the one writer (SWMR, the flush thread, crash and disk-full
  handling);
* ``reader``: ``load_run``/``read_run``, the one reader (live, crashed, truncated files);
* ``access``: the file below h5py (the writer lock, superblock facts, a repaired view).
"""

from labrig.store.layout import DEFAULT_GROUP, FILE_FORMAT, READABLE_FORMATS, now_iso
from labrig.store.reader import (
    InstrumentRecord,
    LoadedRun,
    LogEntry,
    RunData,
    SpectraData,
    load_run,
    open_run_file,
    read_run,
)
from labrig.store.writer import RunStore, check_output_dir, sanitize

__all__ = [
    "DEFAULT_GROUP",
    "FILE_FORMAT",
    "READABLE_FORMATS",
    "InstrumentRecord",
    "LoadedRun",
    "LogEntry",
    "RunData",
    "RunStore",
    "SpectraData",
    "check_output_dir",
    "load_run",
    "now_iso",
    "open_run_file",
    "read_run",
    "sanitize",
]
