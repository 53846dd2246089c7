"""Every figure labrig reports can be recomputed from the run file alone.

Each test opens a run file with h5py only and recomputes figures with numpy, the CIE
tables (colour-science) and the textbook formulas, independently of ``labrig.analysis``:

    J = I/A                       P = I_pd/(F·R̄)      R̄ = ∫R(λ)s(λ)dλ/∫s(λ)dλ
    N = P/Ē, Ē = ∫s dλ/∫(s/E) dλ  EQE = N·e/I         L = c_L·K·P/(π·A)
    K = 683 lm/W·∫V(λ)s(λ)dλ/∫s(λ)dλ                  F = r²/(r²+d²) (on-axis disc)
    Mott–Gurney J = 9/8·ε·ε0·μ·V²/L³                  n_t = 2·ε·ε0·V_TFL/(e·L²)

A CCD counts photons per pixel, so the power shape is s ∝ counts·E(λ)/Δλ.  Everything
else — the area, thickness and permittivity of a preset device, the photodiode table, the
collection factor, the luminance correction, the reference spectrum, the compliance used
— must come from the file (``/entry/resolved_config``, ``/entry/parameters``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
from scipy.constants import Planck, e, epsilon_0, speed_of_light

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report_runs import shared_run  # noqa: E402


# ------------------------------------------------------------------ file-only helpers
def _value(f: h5py.File, path: str):
    value = f[path][()]
    return value.decode() if isinstance(value, bytes) else value


def _photopic(wl: np.ndarray) -> np.ndarray:
    from colour.colorimetry import SDS_LEFS_PHOTOPIC

    sd = SDS_LEFS_PHOTOPIC["CIE 1924 Photopic Standard Observer"]
    return np.interp(wl, sd.wavelengths, sd.values, left=0.0, right=0.0)


def _calibration(f: h5py.File) -> dict[str, float | np.ndarray]:
    rc = f["entry/resolved_config"]
    pd = rc["calibration/photodiode"]
    radius = pd["radius_mm"][()] if "radius_mm" in pd else None
    distance = pd["distance_mm"][()] if "distance_mm" in pd else None
    return {
        "table_nm": pd["responsivity/wavelength_nm"][()],
        "table_a_per_w": pd["responsivity/a_per_w"][()],
        "collection": pd["collection_factor"][()],
        "geometric": radius**2 / (radius**2 + distance**2) if radius and distance else None,
        "c_l": rc["calibration/luminance_correction"][()],
        "area_m2": rc["device/active_area_cm2"][()] * 1e-4,
    }


def _spectral(wl: np.ndarray, s: np.ndarray, cal: dict) -> tuple[float, float, float]:
    """R̄ (A/W), Ē (J), K (lm/W) of power shape ``s``."""
    table_nm = cal["table_nm"]
    r = np.where(
        (wl >= table_nm[0]) & (wl <= table_nm[-1]), np.interp(wl, table_nm, cal["table_a_per_w"]), 0
    )
    photon = Planck * speed_of_light / (wl * 1e-9)
    total = np.trapezoid(s, wl)
    return (
        np.trapezoid(r * s, wl) / total,
        total / np.trapezoid(s / photon, wl),
        683.0 * np.trapezoid(_photopic(wl) * s, wl) / total,
    )


def _reference_spectrum(f: h5py.File) -> tuple[np.ndarray, np.ndarray]:
    ref = f["entry/resolved_config/calibration/reference_spectrum"]
    step = ref["grid_step_nm"][()]
    wl = np.arange(ref["grid_start_nm"][()], ref["grid_stop_nm"][()] + step / 2, step)
    sigma = ref["fwhm_nm"][()] / (2 * np.sqrt(2 * np.log(2)))
    return wl, np.exp(-0.5 * ((wl - ref["peak_nm"][()]) / sigma) ** 2)


def _power_shape(wl: np.ndarray, counts: np.ndarray) -> np.ndarray:
    return counts / wl / np.abs(np.gradient(wl))  # counts·E(λ)/Δλ, any scale


def _eqe_and_luminance(i_pd, current, factors, cal):
    responsivity, photon_energy, efficacy = factors
    power = i_pd / (cal["collection"] * responsivity)
    eqe = power / photon_energy * e / current
    luminance = cal["c_l"] * efficacy * power / (np.pi * cal["area_m2"])
    return eqe, luminance


# ------------------------------------------------------------------ the procedures
def test_quickstart_jvl_j_eqe_and_luminance_from_the_file_alone(tmp_path_factory) -> None:
    """`labrig run jvl --simulate` (preset red_cspbi3: no area in the config text)."""
    path = shared_run("jvl", tmp_path_factory, step_voltage=0.1)  # the quickstart's sweep
    with h5py.File(path, "r") as f:
        assert "active_area_cm2" not in _value(f, "entry/config")  # the text names a preset
        cal = _calibration(f)
        assert cal["area_m2"] == pytest.approx(0.04e-4)
        assert cal["collection"] == pytest.approx(cal["geometric"], rel=1e-12)
        used = f["entry/parameters/compliance_current"]
        assert (used[()], used.attrs["requested"], used.attrs["units"]) == (0.05, 0.0, "A")
        data = f["entry/data"]
        current, i_pd = data["current"][()], data["photodiode_current"][()]
        np.testing.assert_allclose(
            current / (cal["area_m2"] * 1e4) * 1e3, data["current_density"][()], rtol=1e-12
        )
        wl = f["entry/spectra/wavelength_nm"][()]
        counts = f["entry/spectra/counts"][()]
        start, end = data["band_start"][()], data["band_end"][()]
        index = data["spectrum_index"][()]
        lit = np.flatnonzero((index >= 0) & (data["eqe"][()] > 1.0))
        assert lit.size > 20
        eqe, lum = [], []
        for k in lit:
            band = (wl >= start[k]) & (wl <= end[k])
            s = np.where(band, _power_shape(wl, counts[index[k]]), 0.0)
            q, lv = _eqe_and_luminance(i_pd[k], current[k], _spectral(wl, s, cal), cal)
            eqe.append(q * 100)
            lum.append(lv)
        np.testing.assert_allclose(eqe, data["eqe"][()][lit], rtol=1e-9)
        np.testing.assert_allclose(lum, data["luminance"][()][lit], rtol=1e-9)
        # the headline figures are rows of these columns
        at_peak = np.flatnonzero(
            data["voltage"][()] == _value(f, "entry/analysis/voltage_at_peak_eqe")
        )
        assert eqe[list(lit).index(at_peak[0])] == pytest.approx(
            _value(f, "entry/analysis/peak_eqe"), rel=1e-9
        )
        assert max(lum) == pytest.approx(_value(f, "entry/analysis/max_luminance"), rel=1e-9)


def test_spectrum_cie_and_peak_from_the_file_alone(tmp_path_factory) -> None:
    from colour import MSDS_CMFS

    path = shared_run("spectrum", tmp_path_factory)
    with h5py.File(path, "r") as f:
        wl = f["entry/spectra/wavelength_nm"][()]
        assert f["entry/spectra/dark_subtracted"][0] == 1
        s = _power_shape(wl, f["entry/spectra/counts"][0])
        cmfs = MSDS_CMFS["CIE 1931 2 Degree Standard Observer"]
        xyz = [
            np.trapezoid(s * np.interp(wl, cmfs.wavelengths, cmfs.values[:, i], 0, 0), wl)
            for i in range(3)
        ]
        x, y = xyz[0] / sum(xyz), xyz[1] / sum(xyz)
        # the file's figures use the emission band only (noise elsewhere left out)
        assert x == pytest.approx(_value(f, "entry/analysis/cie_x"), abs=5e-4)
        assert y == pytest.approx(_value(f, "entry/analysis/cie_y"), abs=5e-4)
        # the peak: vertex of a parabola through log s over the top of the line
        top = s >= 0.5 * s.max()
        c2, c1, _ = np.polyfit(wl[top], np.log(s[top]), 2)
        assert -c1 / (2 * c2) == pytest.approx(_value(f, "entry/analysis/peak_wavelength"), abs=0.2)
        cal = _calibration(f)
        data = f["entry/data"]
        assert data["current"][0] / (cal["area_m2"] * 1e4) * 1e3 == pytest.approx(
            data["current_density"][0], rel=1e-12
        )


def test_pulsed_el_eqe_and_luminance_from_the_file_alone(tmp_path_factory) -> None:
    path = shared_run("pulsed-el", tmp_path_factory)
    with h5py.File(path, "r") as f:
        cal = _calibration(f)
        factors = _spectral(*_reference_spectrum(f), cal)  # no spectra inside a pulse
        data = f["entry/data"]
        peak = data["peak_current"][()]
        eqe, lum = _eqe_and_luminance(data["photodiode_current"][()], peak, factors, cal)
        np.testing.assert_allclose(eqe * 100, data["eqe"][()], rtol=1e-9)
        np.testing.assert_allclose(lum, data["luminance"][()], rtol=1e-9)
        np.testing.assert_allclose(
            peak / (cal["area_m2"] * 1e4) * 1e3, data["current_density"][()], rtol=1e-12
        )
        level = f["entry/data/drive_level"]
        assert level.attrs["units"] == (
            "A" if _value(f, "entry/parameters/drive") == "current" else "V"
        )
        used = f["entry/parameters/compliance"]
        assert used.attrs["requested"] == 0.0 and used[()] == 12.0  # limits.max_voltage_v


def test_lifetime_luminance_and_l0_from_the_file_alone(tmp_path_factory) -> None:
    path = shared_run("lifetime", tmp_path_factory)
    with h5py.File(path, "r") as f:
        cal = _calibration(f)
        factors = _spectral(*_reference_spectrum(f), cal)
        for channel in ("channel_01", "channel_02"):
            data = f[f"entry/{channel}"]
            i_pd = data["photodiode_current"][()] - data["photodiode_dark"][()]
            _, lum = _eqe_and_luminance(i_pd, data["current"][()], factors, cal)
            # the readings are float32 (format 2): agreement to a few float32 steps (6e-8)
            np.testing.assert_allclose(lum, data["luminance"][()], rtol=5e-7)
            np.testing.assert_allclose(lum / lum[0], data["relative_luminance"][()], rtol=5e-7)
            l0 = _value(f, f"entry/analysis/{channel}/initial_luminance")
            assert lum[0] == pytest.approx(l0, rel=5e-7)


def test_solar_jv_j_jsc_voc_pce_from_the_file_alone(tmp_path_factory) -> None:
    path = shared_run("solar-jv", tmp_path_factory)
    with h5py.File(path, "r") as f:
        area = f["entry/parameters/mask_area"]
        # unset means the preset device's area: the file holds the area used
        assert area[()] == f["entry/resolved_config/device/active_area_cm2"][()] == 0.049
        used = f["entry/parameters/compliance_current"]
        assert (used[()], used.attrs["requested"]) == (0.05, 0.0)
        light = _value(f, "entry/parameters/light_intensity")  # mW/cm²
        scan = f["entry/light_reverse"]
        v, i = scan["voltage"][()], scan["current"][()]
        j = i / area[()] * 1e3
        np.testing.assert_allclose(j, scan["current_density"][()], rtol=1e-12)
        order = np.argsort(v)
        jsc = -np.interp(0.0, v[order], j[order])
        voc = np.interp(0.0, j[order], v[order])
        pce = np.max(-v * j) / light * 100
        assert jsc == pytest.approx(_value(f, "entry/analysis/reverse_jsc"), rel=1e-6)
        assert voc == pytest.approx(_value(f, "entry/analysis/reverse_voc"), rel=1e-3)
        # the file's Pmax comes from a fit around the sampled maximum
        assert pce == pytest.approx(_value(f, "entry/analysis/reverse_pce"), rel=5e-3)
        # each scan apart: four J-V curves, the same voltages, with their own labels
        for name in ("light_forward", "dark_reverse", "dark_forward"):
            other = f[f"entry/{name}"]
            scan_kind, direction = name.split("_")
            assert {s.decode() for s in other["scan"][()]} == {scan_kind}
            assert {d.decode() for d in other["direction"][()]} == {direction}
            np.testing.assert_allclose(np.sort(other["voltage"][()]), np.sort(v))


def test_sclc_mobility_and_trap_density_from_the_file_alone(tmp_path_factory) -> None:
    path = shared_run("sclc", tmp_path_factory)
    with h5py.File(path, "r") as f:
        device = f["entry/resolved_config/device"]
        assert "thickness_nm" not in _value(f, "entry/config")  # from the preset
        thickness_cm = device["thickness_nm"][()] * 1e-7
        eps = device["relative_permittivity"][()] * epsilon_0 * 1e-2  # F/cm
        analysis = f["entry/analysis"]
        v_tfl = analysis["v_tfl"][()]
        n_t = 2 * eps * v_tfl / (e * thickness_cm**2)
        assert n_t == pytest.approx(analysis["trap_density"][()], rel=1e-6)
        data = f["entry/data"]
        v, j = data["voltage"][()], data["current_density"][()] * 1e-3  # A/cm²
        child = (v >= analysis["child_fit_v_min"][()]) & (v <= analysis["child_fit_v_max"][()])
        assert child.sum() >= 5
        mobility = 8 * j[child] * thickness_cm**3 / (9 * eps * v[child] ** 2)
        # a slope-2 fit of log J on log V: μ is the geometric mean of the points' μ
        mu = float(np.exp(np.mean(np.log(mobility))))
        assert mu == pytest.approx(analysis["mobility"][()], rel=1e-6)
