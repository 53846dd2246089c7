"""Files of an older format read as the current one, in this one place.

Format 1 (``labrig-run/1``) named some columns differently (``V1_COLUMNS``: solar-jv and
sclc ``V``/``I``/``J``/``P``, spectrum ``in_compliance``); they are read under the names of
format 2, which every procedure shares.  Its lifetime status, 64-byte text, reads as the
same text format 2 stores as enum codes.

Format 1 also stored two facts only as log text, and the readers of today take them as
data (``RunData.analysis``):

* a lifetime channel's end: ``channel_end`` events ``"<group> ended: <reason>"``, now the
  group's ``end_reason`` figure, written when the channel ends (a resume of a crashed
  format-1 run must not switch an ended channel back on);
* the J-V-L photodiode dark noise: the ``dark`` event ``"... noise <x> A ..."``, now the
  ``photodiode_noise`` and ``light_threshold`` figures.

This is the only code that reads log text, and only for files written before the data
were stored; a figure the file has is never replaced.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from labrig.store.reader import RunData

#: the J-V-L criterion of format 1: light above this many dark-noise sigmas
V1_LIGHT_SNR = 20.0
_V1_NOISE = re.compile(r"noise ([-+0-9.eE]+) A")


#: format-1 column names -> format 2's
V1_COLUMNS = {
    "V": "voltage",
    "I": "current",
    "J": "current_density",
    "P": "power_density",
    "in_compliance": "compliance",
}


def upgrade_v1(run: RunData) -> None:
    """A format-1 run as format 2 has it: columns renamed, and the figures format 2
    stores as data (in place)."""
    for group, columns in run.columns.items():
        run.columns[group] = {V1_COLUMNS.get(name, name): col for name, col in columns.items()}
    run.signal = V1_COLUMNS.get(run.signal, run.signal)
    run.axis = V1_COLUMNS.get(run.axis, run.axis)
    for entry in run.log:
        if entry.kind == "channel_end" and " ended: " in entry.message:
            group, _, reason = entry.message.partition(" ended: ")
            figures = run.analysis.setdefault(group, {})
            figures.setdefault("end_reason", (reason, ""))
        elif entry.kind == "dark" and run.procedure == "jvl":
            found = _V1_NOISE.search(entry.message)
            if found:
                noise = float(found.group(1))
                figures = run.analysis.setdefault(None, {})
                figures.setdefault("photodiode_noise", (noise, "A"))
                figures.setdefault("light_threshold", (V1_LIGHT_SNR * noise, "A"))
