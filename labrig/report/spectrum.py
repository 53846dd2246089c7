"""Report figure of a single EL spectrum (``spectrum``): (a) the spectrum with peak and
FWHM, (b) CIE 1931, (c) its figures."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from labrig.report.jvl import _cie_points, _spectra_panel, device_colours
from labrig.report.style import (
    cie_diagram,
    figures_rows,
    figures_table,
    letter_panels,
    new_figure,
    run_labels,
    title,
)
from labrig.store import LoadedRun

SPECTRUM_TABLE = (
    ("peak_wavelength", "peak wavelength"),
    ("fwhm", "FWHM"),
    ("centroid_wavelength", "centroid"),
    ("dominant_wavelength", "dominant wavelength"),
    ("color_purity", "colour purity"),
    ("cie_x", "CIE x"),
    ("cie_y", "CIE y"),
    ("integration_time", "integration time"),
    ("scans_averaged", "scans averaged"),
    ("saturated", "saturated"),
)


def spectrum_figure(runs: Sequence[LoadedRun]) -> Figure:
    fig, axes = new_figure(1, 3)
    ax_sp, ax_cie, ax_tab = axes[0]
    labels = run_labels(runs)
    spectra = []
    for loaded in runs:
        sp = loaded.run.spectra
        if sp is None or not len(sp.counts):
            spectra.append(None)
            continue
        t = loaded.table()
        note = ""
        if "current_density" in t and len(t["current_density"]):
            note = f"J = {t['current_density'][-1]:.3g} mA/cm²"
        spectra.append((np.asarray(sp.wavelength_nm, float), np.asarray(sp.counts[-1]), note))
    cols = device_colours(runs)
    _spectra_panel(ax_sp, runs, labels, spectra, ("peak_wavelength", "fwhm"), cols)
    cie_diagram(ax_cie, _cie_points(runs, labels, cols))
    header, rows = figures_rows(runs, SPECTRUM_TABLE)
    figures_table(ax_tab, header, rows, "figures")
    letter_panels([ax_sp, ax_cie])
    title(fig, "EL spectrum", runs)
    return fig
