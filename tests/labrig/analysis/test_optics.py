"""Optics primitives against hand values, published tables and independent integrals."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.integrate import quad

from labrig.analysis import optics
from labrig.config import PhotodiodeCalibration, ResponsivityTable
from labrig.errors import ConfigError

TABLE_NM = np.array([400, 450, 470, 500, 520, 550, 600, 628, 650, 700, 800], float)
TABLE_R = np.array([0.19, 0.24, 0.26, 0.29, 0.31, 0.34, 0.40, 0.43, 0.46, 0.51, 0.60])


def test_lambertian_factor_hand_value():
    # r = 5 mm, d = 20 mm: 25 / (25 + 400)
    assert optics.lambertian_collection_factor(5e-3, 20e-3) == pytest.approx(25 / 425)


@pytest.mark.parametrize("r, d", [(5e-3, 20e-3), (1e-3, 50e-3), (10e-3, 10e-3)])
def test_lambertian_factor_equals_integrated_cosine_cone(r, d):
    theta = np.arctan(r / d)
    cone, _ = quad(lambda t: np.cos(t) * np.sin(t), 0, theta)
    hemisphere, _ = quad(lambda t: np.cos(t) * np.sin(t), 0, np.pi / 2)
    assert optics.lambertian_collection_factor(r, d) == pytest.approx(cone / hemisphere)


def test_lambertian_factor_rejects_nonpositive():
    with pytest.raises(ValueError):
        optics.lambertian_collection_factor(0.0, 1.0)


def _cal(**kw) -> PhotodiodeCalibration:
    table = ResponsivityTable(wavelength_nm=list(TABLE_NM), a_per_w=list(TABLE_R))
    return PhotodiodeCalibration(responsivity=table, **kw)


def test_collection_factor_prefers_calibrated_value():
    assert optics.collection_factor(_cal(collection_factor=0.05)) == 0.05
    assert optics.collection_factor(
        _cal(collection_factor=0.05, radius_mm=5, distance_mm=20)
    ) == pytest.approx(0.05)
    assert optics.collection_factor(_cal(radius_mm=5, distance_mm=20)) == pytest.approx(25 / 425)


def test_responsivity_linear_interpolation_by_hand():
    r = optics.responsivity_at(TABLE_NM, TABLE_R, np.array([400.0, 625.0, 800.0]))
    assert r == pytest.approx([0.19, 0.40 + 25 / 28 * 0.03, 0.60])


def test_responsivity_zero_outside_table_without_spectrum():
    r = optics.responsivity_at(TABLE_NM, TABLE_R, np.array([350.0, 900.0]))
    assert np.all(r == 0)


def test_responsivity_raises_when_spectrum_not_covered():
    wl = np.arange(300.0, 1000.0, 0.5)
    s_ok = optics.gaussian_spectrum(wl, 628, 33)
    optics.responsivity_at(TABLE_NM, TABLE_R, wl, spectrum=s_ok)  # well inside: fine
    s_uv = optics.gaussian_spectrum(wl, 405, 20)  # ~40 % below 400 nm
    with pytest.raises(ConfigError, match="400-800 nm"):
        optics.responsivity_at(TABLE_NM, TABLE_R, wl, spectrum=s_uv)


def test_responsivity_rejects_bad_table():
    with pytest.raises(ConfigError):
        optics.responsivity_at([500, 400], [0.3, 0.2], [450.0])
    with pytest.raises(ConfigError):
        optics.responsivity_at([500], [0.3], [450.0])


@pytest.mark.parametrize(
    "wl, v",
    # CIE 1924 photopic V(λ), published 5 nm table values
    [(555, 1.0), (500, 0.323), (550, 0.99495), (600, 0.631), (650, 0.107), (450, 0.038)],
)
def test_photopic_v_published_values(wl, v):
    assert optics.photopic_v(np.array([wl]))[0] == pytest.approx(v, rel=2e-3)


def test_shipped_photopic_table_is_colour_sciences_to_the_last_digit():
    """The package's V(λ) copy must stay colour-science's own table.  If colour-science
    revises it, regenerate labrig/analysis/data/cie_1924_photopic_v.csv from
    ``SDS_LEFS_PHOTOPIC["CIE 1924 Photopic Standard Observer"]`` (repr of each value)."""
    from colour.colorimetry import SDS_LEFS_PHOTOPIC

    sd = SDS_LEFS_PHOTOPIC["CIE 1924 Photopic Standard Observer"]
    wl, v = optics.photopic_table()
    assert np.array_equal(wl, np.asarray(sd.wavelengths, float))
    assert np.array_equal(v, np.asarray(sd.values, float))


def test_photopic_v_zero_outside_and_interpolates():
    v = optics.photopic_v(np.array([200.0, 900.0, 555.5]))
    assert v[0] == 0 and v[1] == 0
    assert 0.99 < v[2] <= 1.0


def test_photon_energy_hand_value():
    # 1239.84198 eV·nm / 620 nm, e = 1.602176634e-19 C
    e_620 = 1239.84198 / 620 * 1.602176634e-19
    assert optics.photon_energy_j(np.array([620.0]))[0] == pytest.approx(e_620, rel=1e-7)


def test_gaussian_spectrum_unit_area_and_fwhm():
    wl = np.arange(400.0, 900.0, 0.01)
    s = optics.gaussian_spectrum(wl, 628, 33)
    assert optics.spectral_integral(wl, s) == pytest.approx(1.0, rel=1e-9)
    above = wl[s >= s.max() / 2]
    assert above[-1] - above[0] == pytest.approx(33, abs=0.02)
    assert wl[np.argmax(s)] == pytest.approx(628, abs=0.01)
