"""Lifetime analysis against hand-computed values and synthetic decays with known truth."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.optimize import brentq

from labrig.analysis import lifetime as lt

HOUR = 3600.0


def _double(t, f=0.3, tau1=2 * HOUR, tau2=30 * HOUR):
    return f * np.exp(-t / tau1) + (1 - f) * np.exp(-t / tau2)


def _truth_t(g, fraction):
    return brentq(lambda t: g(t) - fraction, 0, 1e8)


def _log_times(t_end, n=300):
    return np.unique(np.concatenate([[0.0], np.geomspace(1.0, t_end, n)]))


# ----------------------------------------------------------------------- T-values
def test_t_fraction_hand_interpolation():
    t = [0.0, 1.0, 2.0]
    y = [1.0, 0.8, 0.4]
    # 0.5 lies 0.3/0.4 of the way from t=1 to t=2
    assert lt.t_fraction(t, y, 0.5) == pytest.approx(1.75)
    assert math.isnan(lt.t_fraction(t, y, 0.3))


def test_t_values_initial_and_peak_reference_with_brightening():
    t = [0.0, 1.0, 2.0, 3.0]
    y = [1.0, 1.2, 0.7, 0.5]
    initial = lt.t_values(t, y)
    assert initial["T95"] == pytest.approx(1.5)  # 1 + (1.2-0.95)/0.5
    assert initial["T50"] == pytest.approx(3.0)
    peak = lt.t_values(t, y, reference="peak")
    assert peak["T50"] == pytest.approx(2.5)  # level 0.6 between 0.7 and 0.5
    assert peak["T95"] == pytest.approx(1 + (1.2 - 1.14) / 0.5)
    assert lt.reference_luminance(t, y, "peak") == (1.2, 1)


def test_t_values_on_dense_exponential_match_analytic():
    tau = 5 * HOUR
    t = _log_times(4 * tau, 2000)
    y = np.exp(-t / tau)
    for name, frac in lt.T_FRACTIONS.items():
        assert lt.t_values(t, y)[name] == pytest.approx(tau * math.log(1 / frac), rel=1e-4)


def test_t_fraction_rejects_bad_fraction():
    with pytest.raises(ValueError, match="fraction"):
        lt.t_fraction([0, 1], [1, 0.5], 1.5)


# --------------------------------------------------------------------------- fits
def test_aicc_hand_value():
    # N ln(RSS/N) + 2k + 2k(k+1)/(N-k-1) with N=10, RSS=0.1, k=2
    assert lt.aicc(0.1, 10, 2) == pytest.approx(10 * math.log(0.01) + 4 + 12 / 7)


def test_single_exponential_fit_recovers_tau_with_honest_error():
    rng = np.random.default_rng(3)
    tau = 8 * HOUR
    t = _log_times(3 * tau)
    y = 500 * np.exp(-t / tau) * (1 + 0.003 * rng.standard_normal(t.size))
    fit = lt.fit_decay(t, y, "single")
    assert fit.params["tau_s"] == pytest.approx(tau, rel=0.01)
    assert abs(fit.params["tau_s"] - tau) < 4 * fit.errors["tau_s"]
    assert fit.t_fraction(0.5) == pytest.approx(tau * math.log(2), rel=0.01)


def test_stretched_fit_recovers_beta_and_wins_by_aicc():
    rng = np.random.default_rng(4)
    tau, beta = 6 * HOUR, 0.6
    t = _log_times(5 * tau)
    y = np.exp(-((t / tau) ** beta)) * (1 + 0.003 * rng.standard_normal(t.size))
    fits = lt.fit_models(t, y)
    best = lt.best_fit(fits)
    assert best.model == "stretched"
    assert best.params["beta"] == pytest.approx(beta, abs=0.02)
    assert best.params["tau_s"] == pytest.approx(tau, rel=0.03)
    assert fits[0] is best  # sorted best first


def test_double_exponential_fit_recovers_components():
    rng = np.random.default_rng(5)
    t = _log_times(40 * HOUR)
    y = _double(t) * (1 + 0.002 * rng.standard_normal(t.size))
    fits = lt.fit_models(t, y)
    best = fits[0]
    assert best.model == "double"
    assert best.params["f1"] == pytest.approx(0.3, abs=0.03)
    assert best.params["tau1_s"] == pytest.approx(2 * HOUR, rel=0.1)
    assert best.params["tau2_s"] == pytest.approx(30 * HOUR, rel=0.05)
    assert all(best.errors[k] > 0 for k in best.errors)


def test_fit_relative_to_peak_ignores_the_brightening():
    tau = 4 * HOUR
    t = _log_times(4 * tau)
    y = (1 + 0.2 * (1 - np.exp(-t / (0.1 * HOUR)))) * np.exp(-t / tau)
    fit = lt.fit_decay(t, y, "single", reference="peak")
    assert fit.time_offset_s > 0
    assert fit.reference == "peak"
    t50_data = lt.t_fraction(t, y, 0.5, reference="peak")
    assert fit.t_fraction(0.5) == pytest.approx(t50_data, rel=0.03)


def test_fit_needs_enough_points():
    with pytest.raises(ValueError, match="at least"):
        lt.fit_decay([0, 1, 2], [1, 0.9, 0.8], "double")


# -------------------------------------------------------------- early prediction
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_early_prediction_from_first_third_within_15_percent_and_band_covers(seed):
    # 0.1 % photodiode noise: the simulated rig's level
    rng = np.random.default_rng(seed)
    truth = _truth_t(_double, 0.5)
    t = _log_times(truth / 3, 200)
    y = 1000 * _double(t) * (1 + 0.001 * rng.standard_normal(t.size))
    pred = lt.predict_t_fraction(t, y, 0.5, seed=seed)
    assert pred.value_s == pytest.approx(truth, rel=0.15)
    assert pred.low_s <= truth <= pred.high_s
    assert pred.low_s <= pred.value_s <= pred.high_s
    assert pred.std_s > 0


@pytest.mark.parametrize("seed", [1, 3])
def test_noisier_early_data_widen_the_band_rather_than_miss_the_truth(seed):
    rng = np.random.default_rng(seed)
    truth = _truth_t(_double, 0.5)
    t = _log_times(truth / 3, 200)
    y = _double(t) * (1 + 0.003 * rng.standard_normal(t.size))
    pred = lt.predict_t_fraction(t, y, 0.5, seed=seed)
    assert pred.low_s <= truth <= pred.high_s
    assert not math.isnan(pred.high_s)
    assert pred.relative_width > 0.3


def test_band_narrows_as_data_accumulate():
    rng = np.random.default_rng(7)
    truth = _truth_t(_double, 0.5)
    widths = []
    for end in (truth / 3, truth * 0.7, truth * 1.2):
        t = _log_times(end, 250)
        y = _double(t) * (1 + 0.003 * rng.standard_normal(t.size))
        widths.append(lt.predict_t_fraction(t, y).relative_width)
    assert widths[0] > widths[1] > widths[2]
    assert widths[2] < 0.05


def test_extrapolated_t50_when_channel_stopped_at_t80():
    rng = np.random.default_rng(8)
    tau, beta = 10 * HOUR, 0.8
    g = lambda tt: np.exp(-((tt / tau) ** beta))  # noqa: E731
    t80 = _truth_t(g, 0.8)
    t = _log_times(t80, 200)
    y = g(t) * (1 + 0.002 * rng.standard_normal(t.size))
    pred = lt.predict_t_fraction(t, y, 0.5)
    truth = tau * math.log(2) ** (1 / beta)
    assert pred.value_s == pytest.approx(truth, rel=0.1)
    assert pred.low_s <= truth <= pred.high_s


# ---------------------------------------------------------------- luminance scaling
def test_scale_t50_hand_values():
    value, err = lt.scale_t50(10 * HOUR, 1000, 100, 2.0, t50_err_s=1 * HOUR, n_err=0.1)
    assert value == pytest.approx(1000 * HOUR)
    assert err == pytest.approx(1000 * HOUR * math.hypot(0.1, math.log(10) * 0.1))


def test_fit_scaling_exponent_recovers_n_and_covers_truth():
    rng = np.random.default_rng(9)
    n_true, c = 1.8, 1e9
    l0 = np.array([300.0, 300, 1000, 1000, 3000, 3000])
    t50 = c * l0**-n_true * (1 + 0.03 * rng.standard_normal(l0.size))
    fit = lt.fit_scaling_exponent(l0, t50)
    assert fit.n == pytest.approx(n_true, abs=0.1)
    assert abs(fit.n - n_true) < 3 * fit.n_err
    t_ref, t_err = fit.t50_at(100.0)
    assert t_ref == pytest.approx(c * 100.0**-n_true, rel=0.15)
    assert t_err > 0


def test_fit_scaling_exponent_exact_data_and_weights():
    l0 = [100.0, 400.0, 1600.0]
    t50 = [1e6 * x**-1.5 for x in l0]
    fit = lt.fit_scaling_exponent(l0, t50, [0.01 * t for t in t50])
    assert fit.n == pytest.approx(1.5, abs=1e-9)
    assert fit.t50_at(1000.0)[0] == pytest.approx(1e6 * 1000.0**-1.5, rel=1e-9)


def test_fit_scaling_exponent_needs_three_luminances():
    with pytest.raises(ValueError, match="three or more"):
        lt.fit_scaling_exponent([100, 100, 1000], [10, 11, 1])


@pytest.mark.parametrize(
    "model, params",
    [("single", (1.1, 2.0)), ("double", (0.9, 0.3, 0.4, 3.0)), ("stretched", (1.0, 1.5, 0.6))],
)
def test_analytic_jacobians_match_finite_differences(model, params):
    from scipy.optimize import approx_fprime

    spec = lt._SPECS[model]
    t = np.linspace(0.0, 5.0, 7)
    jac = spec.jac(t, *params)
    for i, ti in enumerate(t):
        numeric = approx_fprime(np.array(params), lambda p, ti=ti: spec.func(ti, *p), 1e-7)
        assert jac[i] == pytest.approx(numeric, rel=1e-4, abs=1e-6)


def test_channels_at_one_l0_do_not_count_as_distinct_levels():
    # eight channels set to 1000 cd/m² scatter by < 1 %: no lever arm for n
    l0 = 1000 * (1 + 0.005 * np.arange(8))
    with pytest.raises(ValueError, match="three or more distinct"):
        lt.fit_scaling_exponent(l0, 1e4 * np.ones(8))


def test_band_coverage_when_extrapolating_from_t70():
    # simulator-like record (log-spaced, at most 600 s apart, 0.02 % noise) stopped at
    # L/L0 = 0.7; the 95 % band must cover the true T50 in (nearly) every realisation
    truth = _truth_t(_double, 0.5)
    t70 = _truth_t(_double, 0.7)
    t = [0.0]
    while t[-1] < t70:
        t.append(t[-1] + min(max(t[-1] * (10 ** (1 / 20) - 1), 1.0), 600.0))
    t = np.array(t)
    covered = 0
    for seed in range(10):
        y = _double(t) * (1 + 2e-4 * np.random.default_rng(seed).standard_normal(t.size))
        pred = lt.predict_t_fraction(t, y, 0.5, samples=1000)
        covered += pred.low_s <= truth <= pred.high_s
    assert covered >= 9


def test_runaway_slow_component_leaves_the_band_open():
    fit = lt.DecayFit(
        model="double",
        params={"A": 1.0, "f1": 0.4, "tau1_s": 3600.0, "tau2_s": 1e12},
        errors={"A": 1e-4, "f1": 1e-3, "tau1_s": 10.0, "tau2_s": 0.0},
        covariance=np.diag([1e-8, 1e-6, 100.0, 0.0]),
        rss=1e-6,
        n_points=50,
        aicc=-100.0,
        span_s=7200.0,
    )
    assert not fit.constrained
    low, high, std = fit.t_fraction_band(0.5)
    assert math.isinf(high) and math.isinf(std)
