"""Operational-lifetime analysis: T-values, decay fits, luminance scaling, early T50.

Everything here works on plain arrays (time in s, luminance in any unit) so the procedure,
``labrig report`` and a notebook compute the same numbers.

* **T-values** (T95/T90/T80/T50): the first time the luminance falls to the fraction of a
  reference, linearly interpolated between the two bracketing samples.  The reference is
  the initial luminance ``L(0)`` or the peak luminance (perovskite LEDs often brighten
  for minutes to hours first; the crossing is then searched after the peak).
* **Decay fits** (``scipy.optimize.curve_fit``) of the normalised luminance
  ``y = L/L_ref`` with three models, each with a free amplitude ``A``:

  - ``single``:    y = A·exp(-t/τ)
  - ``double``:    y = A·[f·exp(-t/τ1) + (1-f)·exp(-t/τ2)],  τ1 < τ2
  - ``stretched``: y = A·exp(-(t/τ)^β)

  Parameter uncertainties are the square roots of the covariance diagonal, scaled by
  the residual variance and by (1+ρ)/(1-ρ) for residuals correlated in time (ρ their
  lag-1 autocorrelation: a shape the model does not follow).  The stretched model
  continues from the device's age at t = 0 (the settling before the first reading);
  exponentials forget it.  The better model is the one with the lowest **AICc**,
  ``AICc = N·ln(RSS/N) + 2k + 2k(k+1)/(N-k-1)`` (Burnham & Anderson 2002).
* **Predicted (or extrapolated) T50**: the best model's time to the fraction of its own
  fitted initial value ``A``, with a band averaged over the models by their Akaike
  weights (which decay shape applies is uncertain early on, and that belongs in the
  band).  Each model's draws come from its covariance (time constants log-normal); a
  two-component fit collapsed onto one exponential leaves the average to the single
  model (its covariance describes a ridge of equal fits, not an uncertainty).  A
  band the data cannot close (a time constant running away, or an upper edge 100× past
  the data) is open above (+inf) and says why; no edge is ever NaN.
  ``benchmarks/t50_coverage.py`` measures how often the stated level holds on simulated
  devices.
* **Luminance scaling**: ``T50(L1) = T50(L0)·(L0/L1)^n``; ``n`` given, or fitted by
  weighted least squares of ``ln T50 = c - n·ln L0`` over channels at three or more
  distinct initial luminances.  Scatter beyond the stated T50 uncertainties (between
  devices, or a law that bends) enters the uncertainty as one extra variance term
  (χ²/dof = 1), intervals are Student t, and a lack-of-fit test on replicate channels
  says whether the power law describes the data at all.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from scipy.optimize import OptimizeWarning, curve_fit
from scipy.optimize.elementwise import find_root

Reference = Literal["initial", "peak"]
#: a fitted time constant this many times longer than the data is not determined by them
UNCONSTRAINED_SPAN_RATIO = 100.0
ModelName = Literal["single", "double", "stretched"]
#: a two-component fit with a component below this fraction, or time constants closer
#: than this ratio, has collapsed onto a single exponential
COLLAPSED_F = 0.01
COLLAPSED_TAU_RATIO = 1.2

#: the conventional lifetime figures and the luminance fraction each one means
T_FRACTIONS: dict[str, float] = {"T95": 0.95, "T90": 0.90, "T80": 0.80, "T50": 0.50}
MODELS: tuple[ModelName, ...] = ("single", "double", "stretched")
#: reference luminances (cd/m²) lifetimes are reported at by default
REFERENCE_LUMINANCES_CD_M2: tuple[float, ...] = (1000.0, 100.0)


# --------------------------------------------------------------------------- T-values
def _clean(time_s: Sequence[float], luminance: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    t = np.asarray(time_s, dtype=float)
    y = np.asarray(luminance, dtype=float)
    if t.shape != y.shape or t.ndim != 1:
        raise ValueError("time and luminance must be 1-D arrays of the same length")
    keep = np.isfinite(t) & np.isfinite(y)
    t, y = t[keep], y[keep]
    order = np.argsort(t, kind="stable")
    return t[order], y[order]


def reference_luminance(
    time_s: Sequence[float], luminance: Sequence[float], reference: Reference = "initial"
) -> tuple[float, int]:
    """The reference luminance and the index it sits at (first sample, or the peak)."""
    _, y = _clean(time_s, luminance)
    if y.size == 0:
        raise ValueError("no finite data")
    if reference == "initial":
        return float(y[0]), 0
    if reference == "peak":
        i = int(np.argmax(y))
        return float(y[i]), i
    raise ValueError(f"reference must be 'initial' or 'peak', got {reference!r}")


def t_fraction(
    time_s: Sequence[float],
    luminance: Sequence[float],
    fraction: float,
    *,
    reference: Reference = "initial",
    l0: float | None = None,
) -> float:
    """First time L falls to ``fraction``·L_ref (after the reference point), linearly
    interpolated between the bracketing samples; NaN when the data never get there.

    ``l0`` overrides the initial reference (e.g. the L0 a procedure set the current for).
    """
    if not 0 < fraction < 1:
        raise ValueError(f"fraction must lie in (0, 1), got {fraction}")
    t, y = _clean(time_s, luminance)
    if t.size < 2:
        return math.nan
    ref, start = reference_luminance(t, y, reference)
    if l0 is not None and reference == "initial":
        ref = float(l0)
    level = fraction * ref
    below = np.nonzero(y[start:] <= level)[0]
    if below.size == 0:
        return math.nan
    i = start + int(below[0])
    if i == 0:
        return float(t[0])
    t0, t1, y0, y1 = t[i - 1], t[i], y[i - 1], y[i]
    if y0 == y1:
        return float(t1)
    return float(t0 + (y0 - level) * (t1 - t0) / (y0 - y1))


def t_values(
    time_s: Sequence[float],
    luminance: Sequence[float],
    *,
    reference: Reference = "initial",
    fractions: Mapping[str, float] = T_FRACTIONS,
    l0: float | None = None,
) -> dict[str, float]:
    """``{"T95": s, "T90": s, ...}`` from the data (NaN where not reached)."""
    return {
        name: t_fraction(time_s, luminance, frac, reference=reference, l0=l0)
        for name, frac in fractions.items()
    }


# ------------------------------------------------------------------------ decay models
# ``age`` is how long the device was already driven at t = 0 (settling before the first
# reading).  Exponentials forget it (the amplitude absorbs it); a stretched decay does not:
# from age a on, L ∝ exp(-((t+a)/τ)^β), which is no stretched exponential in t alone.
def _single(t: np.ndarray, a: float, tau: float, age: float = 0.0) -> np.ndarray:
    return a * np.exp(-t / tau)


def _double(
    t: np.ndarray, a: float, f: float, tau1: float, tau2: float, age: float = 0.0
) -> np.ndarray:
    return a * (f * np.exp(-t / tau1) + (1.0 - f) * np.exp(-t / tau2))


def _stretched(t: np.ndarray, a: float, tau: float, beta: float, age: float = 0.0) -> np.ndarray:
    u = (np.maximum(t, 0.0) + age) / tau
    return a * np.exp((age / tau) ** beta - np.power(u, beta))


# analytic Jacobians: several times fewer model evaluations than finite differences
def _single_jac(t: np.ndarray, a: float, tau: float, age: float = 0.0) -> np.ndarray:
    e = np.exp(-t / tau)
    return np.column_stack([e, a * e * t / tau**2])


def _double_jac(
    t: np.ndarray, a: float, f: float, tau1: float, tau2: float, age: float = 0.0
) -> np.ndarray:
    e1, e2 = np.exp(-t / tau1), np.exp(-t / tau2)
    return np.column_stack(
        [
            f * e1 + (1 - f) * e2,
            a * (e1 - e2),
            a * f * e1 * t / tau1**2,
            a * (1 - f) * e2 * t / tau2**2,
        ]
    )


def _stretched_jac(
    t: np.ndarray, a: float, tau: float, beta: float, age: float = 0.0
) -> np.ndarray:
    u, v = (np.maximum(t, 0.0) + age) / tau, age / tau
    ub, vb = np.power(u, beta), v**beta
    e = np.exp(vb - ub)
    log_u = np.log(np.where(u > 0, u, 1.0))
    v_log_v = vb * math.log(v) if v > 0 else 0.0
    return np.column_stack([e, a * e * beta * (ub - vb) / tau, a * e * (v_log_v - ub * log_u)])


@dataclass(frozen=True)
class _ModelSpec:
    func: Callable[..., np.ndarray]
    jac: Callable[..., np.ndarray]
    names: tuple[str, ...]
    time_params: tuple[int, ...]  # indices of parameters with the dimension of time
    lower: tuple[float, ...]
    upper: tuple[float, ...]


_SPECS: dict[str, _ModelSpec] = {
    "single": _ModelSpec(_single, _single_jac, ("A", "tau_s"), (1,), (0, 1e-9), (np.inf, np.inf)),
    "double": _ModelSpec(
        _double,
        _double_jac,
        ("A", "f1", "tau1_s", "tau2_s"),
        (2, 3),
        (0, 0, 1e-9, 1e-9),
        (np.inf, 1, np.inf, np.inf),
    ),
    "stretched": _ModelSpec(
        _stretched,
        _stretched_jac,
        ("A", "tau_s", "beta"),
        (1,),
        (0, 1e-9, 0.05),
        (np.inf, np.inf, 3.0),
    ),
}


def _starts(model: str) -> list[list[float]]:
    """Initial guesses in units of the longest time in the data (fits run scaled)."""
    if model == "single":
        return [[1.0, tau] for tau in (0.5, 2.0, 10.0)]
    if model == "stretched":
        return [[1.0, tau, beta] for tau in (0.5, 3.0) for beta in (0.5, 1.0)]
    return [[1.0, f, tau1, tau2] for f in (0.2, 0.5) for tau1 in (0.05, 0.3) for tau2 in (1.0, 5.0)]


@dataclass(frozen=True)
class DecayFit:
    """One fitted decay model on normalised luminance (``y = L/L_ref``).

    ``time_offset_s`` is where the model's t = 0 sits on the run's time axis (0 for the
    initial reference, the peak's time for the peak reference)."""

    model: str
    params: dict[str, float]
    errors: dict[str, float]
    covariance: np.ndarray = field(repr=False)
    rss: float
    n_points: int
    aicc: float
    time_offset_s: float = 0.0
    reference: Reference = "initial"
    span_s: float = math.inf  # the longest time (model axis) in the fitted data
    #: variance factor (≥ 1) already applied to ``covariance`` for correlated residuals
    inflation: float = 1.0
    #: how long the device had been driven at the model's t = 0 (see ``fit_decay``)
    age_s: float = 0.0

    @property
    def constrained(self) -> bool:
        """False when the data cannot pin the model down: a time constant far beyond the
        data (the slow component of a two-component fit on a short record runs away) or a
        parameter without a finite, non-zero uncertainty.  Its band is then left open."""
        spec = _SPECS[self.model]
        for i, name in enumerate(spec.names):
            value, err = self.params[name], self.errors[name]
            if not math.isfinite(err) or (err == 0 and spec.lower[i] < value < spec.upper[i]):
                return False
            if i in spec.time_params and value > UNCONSTRAINED_SPAN_RATIO * self.span_s:
                return False
        return True

    @property
    def collapsed(self) -> bool:
        """A two-component fit that is one exponential in disguise (one component empty,
        or both time constants within ``COLLAPSED_TAU_RATIO``): its covariance describes
        a ridge of equivalent fits, not an uncertainty, and the single model already
        stands for it in the average."""
        if self.model != "double":
            return False
        f, tau1, tau2 = self.params["f1"], self.params["tau1_s"], self.params["tau2_s"]
        return not COLLAPSED_F < f < 1 - COLLAPSED_F or tau2 < COLLAPSED_TAU_RATIO * tau1

    @property
    def _vector(self) -> np.ndarray:
        return np.array([self.params[n] for n in _SPECS[self.model].names])

    def evaluate(self, time_s: np.ndarray | float) -> np.ndarray:
        """Model L/L_ref on the run's time axis."""
        t = np.asarray(time_s, dtype=float) - self.time_offset_s
        return _SPECS[self.model].func(t, *self._vector, age=self.age_s)

    def t_fraction(self, fraction: float) -> float:
        """Run time at which the model falls to ``fraction`` of its fitted initial value."""
        p = self._vector[np.newaxis, :]
        return self.time_offset_s + float(_times_to(self.model, p, fraction, self.age_s)[0])

    def t_fraction_band(
        self, fraction: float, *, level: float = 0.95, samples: int = 2000, seed: int = 0
    ) -> tuple[float, float, float]:
        """(low, high, standard deviation) of the time to ``fraction``, from parameter
        sets drawn from the fit's multivariate normal distribution."""
        return _band(*self.draw_t_fraction(fraction, samples=samples, seed=seed), level)

    def draw_t_fraction(
        self, fraction: float, *, samples: int, seed: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """(run times to ``fraction``, weights) for parameter sets drawn from the fit's
        distribution (+inf: that draw never gets there, or the fit cannot pin it down)."""
        if not self.constrained:
            return np.full(samples, math.inf), np.ones(samples)
        times, weights = _sample_t_fraction(self, fraction, samples=samples, seed=seed)
        return self.time_offset_s + times, weights


def _band(values: np.ndarray, weights: np.ndarray, level: float) -> tuple[float, float, float]:
    """(low, high, standard deviation) of weighted drawn times: the central ``level``
    interval.  Draws that never reach the fraction are +inf and sort last, so an open
    edge is +inf, never the NaN that interpolating between inf and a number gives.  The
    standard deviation is inf when the band is open above."""
    keep = weights > 0
    values, weights = values[keep], weights[keep]
    if values.size == 0:
        return 0.0, math.inf, math.inf
    order = np.argsort(values, kind="stable")
    values, cum = values[order], np.cumsum(weights[order])
    cum /= cum[-1]
    lo_i, hi_i = np.searchsorted(cum, [(1 - level) / 2, (1 + level) / 2])
    lo, hi = float(values[min(lo_i, values.size - 1)]), float(values[min(hi_i, values.size - 1)])
    finite = np.isfinite(values)
    if not math.isfinite(hi) or finite.sum() < 2:
        return lo, hi, math.inf
    mean = np.average(values[finite], weights=weights[order][finite])
    var = np.average((values[finite] - mean) ** 2, weights=weights[order][finite])
    return lo, hi, float(math.sqrt(var))


def _times_to(model: str, p: np.ndarray, fraction: float, age: float) -> np.ndarray:
    """Time (model axis) when each parameter set (rows of ``p``) falls to ``fraction``·A;
    +inf where the root finder fails."""
    log_inv = math.log(1 / fraction)
    if model == "single":
        return p[:, 1] * log_inv
    if model == "stretched":
        tau, beta = p[:, 1], p[:, 2]
        return tau * (log_inv + (age / tau) ** beta) ** (1 / beta) - age
    if not p.size:
        return np.empty(0)
    f, tau1, tau2 = p[:, 1], p[:, 2], p[:, 3]
    root = find_root(
        lambda t, f, t1, t2: _double(t, 1.0, f, t1, t2) - fraction,
        (np.zeros(len(p)), _double_bracket(tau1, tau2, fraction)),
        args=(f, tau1, tau2),
    )
    return np.where(root.success, root.x, math.inf)


def _sample_t_fraction(
    fit: DecayFit, fraction: float, *, samples: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Times to ``fraction`` (model axis) for parameter sets drawn from the fit's
    multivariate normal distribution, and their (equal) weights.  Time constants are
    drawn log-normally (their delta-method log-space covariance): they are positive and
    their likelihood is skewed towards long times, which a symmetric draw would cut off
    exactly where an extrapolated T50 is most uncertain.  A draw outside the model's
    domain (f ∉ [0, 1], β out of range) is a decay the model cannot represent: it counts
    as "never reaches" rather than being dropped, so a poorly constrained fit gets a wide
    (honest) band, not a narrow one."""
    spec = _SPECS[fit.model]
    mean = fit._vector
    cov = np.asarray(fit.covariance, dtype=float)
    if not np.all(np.isfinite(cov)):
        return np.full(samples, math.inf), np.ones(samples)
    rng = np.random.default_rng(seed)
    idx = list(spec.time_params)
    scale = np.ones(mean.size)
    scale[idx] = mean[idx]
    centre = mean.copy()
    centre[idx] = np.log(mean[idx])
    draws = rng.multivariate_normal(
        centre, cov / np.outer(scale, scale), size=samples, check_valid="ignore"
    )
    with np.errstate(over="ignore"):  # a draw far out in log τ is τ = inf: never reaches
        draws[:, idx] = np.exp(draws[:, idx])
    valid = np.all((draws > np.array(spec.lower)) & (draws <= np.array(spec.upper)), axis=1)
    times = np.full(samples, math.inf)
    with np.errstate(over="ignore", invalid="ignore"):
        reach = _times_to(fit.model, draws[valid], fraction, fit.age_s)
    times[valid] = np.where(np.isfinite(reach) & (reach >= 0), reach, math.inf)
    return times, np.ones(samples)


def _double_bracket(tau1: Any, tau2: Any, fraction: float) -> Any:
    """A time by which the two-component decay is surely below ``fraction``: at
    t = τ_max·(ln(1/fraction) + 1) both terms are below fraction/e."""
    return np.maximum(tau1, tau2) * (math.log(1 / fraction) + 1)


def aicc(rss: float, n: int, k: int) -> float:
    """Corrected Akaike information criterion for least squares with Gaussian errors."""
    if n - k - 1 <= 0 or rss <= 0:
        return math.inf
    return n * math.log(rss / n) + 2 * k + 2 * k * (k + 1) / (n - k - 1)


def fit_decay(
    time_s: Sequence[float],
    luminance: Sequence[float],
    model: ModelName,
    *,
    reference: Reference = "initial",
    age_s: float = 0.0,
) -> DecayFit:
    """Least-squares fit of one decay model to L/L_ref (data from the reference on).

    ``age_s``: how long the device had been driven before the time axis' zero (the
    settling before the first reading); the stretched model continues from that age.
    The covariance is scaled by the residual variance and by ``residual_inflation``.

    Raises ``ValueError`` when there are too few points or no start converges."""
    if model not in _SPECS:
        raise ValueError(f"model must be one of {', '.join(_SPECS)}, got {model!r}")
    t, y = _clean(time_s, luminance)
    ref, start = reference_luminance(t, y, reference)
    if ref <= 0:
        raise ValueError("reference luminance must be positive")
    offset = float(t[start])
    t, y = t[start:] - offset, y[start:] / ref
    spec = _SPECS[model]
    k = len(spec.names)
    if t.size < k + 2:
        raise ValueError(f"{model} fit needs at least {k + 2} points, got {t.size}")
    scale = float(t[-1]) if t[-1] > 0 else 1.0
    ts = t / scale
    age = max(float(age_s), 0.0) + offset  # the peak reference starts the model later
    func = functools.partial(spec.func, age=age / scale)
    jac = functools.partial(spec.jac, age=age / scale)
    best: tuple[float, np.ndarray, np.ndarray] | None = None
    for p0 in _starts(model):
        try:
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore", OptimizeWarning)
                popt, pcov = curve_fit(
                    func,
                    ts,
                    y,
                    p0=p0,
                    jac=jac,
                    bounds=(spec.lower, spec.upper),
                    x_scale="jac",
                    max_nfev=4000,
                )
        except (RuntimeError, ValueError):
            continue
        rss = float(np.sum((func(ts, *popt) - y) ** 2))
        if best is None or rss < best[0]:
            best = (rss, popt, pcov)
    if best is None:
        raise ValueError(f"{model} fit did not converge")
    rss, popt, pcov = best
    inflation = residual_inflation(y - func(ts, *popt))
    pcov = pcov * inflation
    if model == "double" and popt[2] > popt[3]:  # keep τ1 the fast component
        perm = [0, 1, 3, 2]
        popt = popt[perm]
        popt[1] = 1 - popt[1]
        pcov = pcov[np.ix_(perm, perm)]
        pcov[1, :] *= -1
        pcov[:, 1] *= -1
    # back to seconds: time parameters scale by ``scale``
    units = np.ones(k)
    units[list(spec.time_params)] = scale
    popt = popt * units
    pcov = pcov * np.outer(units, units)
    errors = np.sqrt(np.clip(np.diag(pcov), 0, None))
    return DecayFit(
        model=model,
        params={n: float(v) for n, v in zip(spec.names, popt, strict=True)},
        errors={n: float(e) for n, e in zip(spec.names, errors, strict=True)},
        covariance=pcov,
        rss=rss,
        n_points=int(t.size),
        aicc=aicc(rss, int(t.size), k),
        time_offset_s=offset,
        reference=reference,
        span_s=float(t[-1]),
        inflation=inflation,
        age_s=age,
    )


#: lag-1 residual autocorrelation is capped here (variance factor ≤ (1+ρ)/(1-ρ) = 199)
MAX_RESIDUAL_CORRELATION = 0.99


def residual_inflation(residuals: np.ndarray) -> float:
    """Variance factor for residuals that are correlated in time: (1+ρ)/(1-ρ) with ρ the
    lag-1 autocorrelation (AR(1) effective sample size, N_eff = N·(1-ρ)/(1+ρ)), 1 when
    ρ ≤ 0.  White noise gives ρ ≈ 0; a model that does not follow the data's shape
    leaves long runs of same-sign residuals (ρ → 1), and the covariance — which assumes
    independent points — would otherwise understate how little the data pin it down."""
    r = np.asarray(residuals, dtype=float)
    r = r - r.mean()
    denom = float(np.dot(r, r))
    if r.size < 3 or denom <= 0:
        return 1.0
    rho = min(float(np.dot(r[:-1], r[1:])) / denom, MAX_RESIDUAL_CORRELATION)
    return max(1.0, (1 + rho) / (1 - rho))


def fit_models(
    time_s: Sequence[float],
    luminance: Sequence[float],
    *,
    models: Sequence[ModelName] = MODELS,
    reference: Reference = "initial",
    age_s: float = 0.0,
) -> list[DecayFit]:
    """Every model that converges, best (lowest AICc) first."""
    fits = []
    for model in models:
        try:
            fits.append(fit_decay(time_s, luminance, model, reference=reference, age_s=age_s))
        except ValueError:
            continue
    return sorted(fits, key=lambda f: f.aicc)


def best_fit(fits: Sequence[DecayFit]) -> DecayFit:
    """The model with the lowest AICc."""
    if not fits:
        raise ValueError("no fit converged")
    return min(fits, key=lambda f: f.aicc)


# -------------------------------------------------------------------- prediction
#: models whose Akaike weight is below this add no draws to the averaged band
MIN_MODEL_WEIGHT = 1e-3


class NotEnoughDataError(ValueError):
    """A prediction was asked for before the data can support any decay fit."""


@dataclass(frozen=True)
class LifetimePrediction:
    """A predicted (or extrapolated) time to a luminance fraction, with its band.

    ``value_s`` is the best (lowest-AICc) model's time; the band is the ``level``
    interval of the models averaged by their Akaike weights (``weights``), each drawn
    from its own fitted distribution.  ``high_s`` is +inf when the data cannot say when
    the fraction will be reached; ``open_reason`` then says why in one line."""

    fraction: float
    value_s: float
    std_s: float
    low_s: float
    high_s: float
    level: float
    model: str
    fit: DecayFit = field(repr=False)
    weights: dict[str, float] = field(default_factory=dict)
    open_reason: str = ""
    fits: tuple[DecayFit, ...] = field(default=(), repr=False)  # every model, best first

    @property
    def relative_width(self) -> float:
        """Full band width over the value: what an early-stop rule compares."""
        if not (self.value_s > 0 and math.isfinite(self.high_s)):
            return math.inf
        return (self.high_s - self.low_s) / self.value_s


def akaike_weights(fits: Sequence[DecayFit]) -> dict[str, float]:
    """``exp(-ΔAICc/2)`` normalised over the models (Burnham & Anderson 2002, §2.9): the
    weight of evidence for each model given the data and the candidate set."""
    finite = [f for f in fits if math.isfinite(f.aicc)]
    if not finite:
        return {f.model: 1.0 / len(fits) for f in fits}
    best = min(f.aicc for f in finite)
    raw = {f.model: math.exp(-(f.aicc - best) / 2) if math.isfinite(f.aicc) else 0.0 for f in fits}
    total = sum(raw.values())
    return {m: w / total for m, w in raw.items()}


def predict_t_fraction(
    time_s: Sequence[float],
    luminance: Sequence[float],
    fraction: float = 0.5,
    *,
    reference: Reference = "initial",
    models: Sequence[ModelName] = MODELS,
    level: float = 0.95,
    samples: int = 2000,
    seed: int = 0,
    age_s: float = 0.0,
) -> LifetimePrediction:
    """Fit every model and return the time to ``fraction`` with a model-averaged
    ``level`` band.  Used both for the early prediction while a run goes on and for
    extrapolating a channel that stopped early.

    Raises ``NotEnoughDataError`` (one line: what is there, what is needed) when the data
    cannot support a fit yet."""
    t, y = _clean(time_s, luminance)
    need = min(len(_SPECS[m].names) for m in models) + 2
    after_ref = t.size - (reference_luminance(t, y, reference)[1] if t.size else 0)
    if after_ref < need:
        raise NotEnoughDataError(
            f"T{fraction * 100:g} prediction needs at least {need} points from the reference "
            f"on, has {after_ref}"
        )
    fits = fit_models(t, y, models=models, reference=reference, age_s=age_s)
    if not fits:
        raise NotEnoughDataError(f"no decay model converged on the {after_ref} points so far")
    return prediction_from_fits(fits, t, y, fraction, level=level, samples=samples, seed=seed)


def prediction_from_fits(
    fits: Sequence[DecayFit],
    time_s: Sequence[float],
    luminance: Sequence[float],
    fraction: float = 0.5,
    *,
    level: float = 0.95,
    samples: int = 2000,
    seed: int = 0,
) -> LifetimePrediction:
    """The time to ``fraction`` from ``fits`` (made on these data): the best model's
    value, and a band drawn from every model in proportion to its Akaike weight, so the
    uncertainty of which decay shape applies is in the band, not only each shape's
    parameter uncertainty."""
    best = best_fit(fits)
    distinct = [f for f in fits if not f.collapsed] or [best]
    weights = akaike_weights(distinct)
    values, mix = [], []
    for k, fit in enumerate(distinct):
        if weights[fit.model] >= MIN_MODEL_WEIGHT:
            times, w = fit.draw_t_fraction(fraction, samples=samples, seed=seed + k)
            values.append(times)
            mix.append(w * weights[fit.model] / w.sum())
    low, high, std = _band(np.concatenate(values), np.concatenate(mix), level)
    value = best.t_fraction(fraction)
    last = float(np.nanmax(np.asarray(time_s, dtype=float)))
    reached = t_fraction(time_s, luminance, fraction, reference=best.reference)
    if math.isnan(reached):  # not reached in the data: the time lies beyond the last point
        low = max(low, last) if math.isfinite(low) else last
    elif not math.isfinite(low):
        low = reached
    # the band holds the point estimate even for skewed draws; no edge is NaN
    if math.isfinite(value):
        low, high = min(low, value), max(high, value)
    if high > UNCONSTRAINED_SPAN_RATIO * last:  # as far beyond the data as a runaway τ
        high = math.inf
    reason = ""
    if not math.isfinite(high):
        loose = [
            f.model for f in distinct if weights[f.model] >= MIN_MODEL_WEIGHT and not f.constrained
        ]
        why = (
            f"{'/'.join(loose)} fit not pinned down by {last / 3600:.3g} h of data"
            if loose
            else f"over {(1 - level) / 2:.1%} of plausible decays never reach it"
        )
        reason = f"T{fraction * 100:g} band open above: {why}"
    weights = {f.model: weights.get(f.model, 0.0) for f in fits}  # collapsed: 0
    ranked = tuple(sorted(fits, key=lambda f: f.aicc))
    return LifetimePrediction(
        fraction, value, std, low, high, level, best.model, best, weights, reason, ranked
    )


# ---------------------------------------------------------------- luminance scaling
#: initial luminances closer than this ratio count as one level when fitting n
DISTINCT_L0_RATIO = 1.2
#: below this lack-of-fit p-value the power law is reported as not describing the data
LACK_OF_FIT_P = 0.01


@dataclass(frozen=True)
class ScalingFit:
    """``ln T50 = c - n·ln L0``, i.e. ``L0^n·T50 = exp(c)``, fitted by weighted least
    squares with the lack of fit in its uncertainty.

    Each channel's variance in ln T50 is its own (σ_T50/T50)² plus one scatter term
    ``scatter`` chosen so that χ²/dof = 1 (zero when the stated uncertainties already
    explain the scatter; with no stated uncertainties, the residual variance — ordinary
    least squares).  Scatter between nominally equal devices and curvature of the true
    law both land there, so ``covariance`` (of c, n) and the Student-t intervals on
    ``dof`` degrees of freedom do not shrink below what the channels' spread supports.

    ``chi2_red`` is χ²/dof against the stated uncertainties alone (inf without them).
    ``lack_of_fit_p`` is the p-value of the lack-of-fit F test (between-level misfit of
    the line against the scatter of channels at the same L0; NaN without replicate
    channels); ``describes_data`` says whether the law holds ("yes", "no", "untested")
    and ``note`` says why in one line."""

    n: float
    n_err: float
    log_const: float
    covariance: np.ndarray = field(repr=False)  # of (c, n)
    n_points: int
    levels: int = 0
    dof: int = 0
    chi2_red: float = math.nan
    scatter: float = 0.0
    lack_of_fit_p: float = math.nan
    describes_data: str = "untested"
    note: str = ""
    #: ln L0 range of the channels: beyond it T50 is an extrapolation
    log_l0_range: tuple[float, float] = (-math.inf, math.inf)
    #: (coefficients, covariance) of ln T50 = a - b·x - q·(x - x̄)² with x̄ and the same
    #: variances, or None when there are too few points: the bend an extrapolation risks
    curved: tuple[np.ndarray, np.ndarray, float] | None = field(default=None, repr=False)

    def _t(self, level: float, dof: int | None = None) -> float:
        from scipy.special import stdtrit  # Student's t quantile (scipy.stats' t.ppf)

        return float(stdtrit(max(self.dof if dof is None else dof, 1), (1 + level) / 2))

    def extrapolated(self, luminance: float) -> bool:
        """True when ``luminance`` lies outside the channels' initial luminances."""
        lo, hi = self.log_l0_range
        return not lo <= math.log(luminance) <= hi

    def n_interval(self, level: float = 0.95) -> tuple[float, float]:
        """Two-sided ``level`` interval of n (Student t on ``dof``)."""
        half = self._t(level) * self.n_err
        return self.n - half, self.n + half

    def t50_at(self, luminance: float) -> tuple[float, float]:
        """T50 (s) at ``luminance`` on the power law, and its 1-σ uncertainty: half the
        ``t50_interval`` width in ln T50 over the 95 % t quantile (first order)."""
        log_t, _ = self._log_t50(luminance)
        lo, hi = self.t50_interval(luminance, 0.95)
        t = math.exp(log_t)
        return t, t * (math.log(hi) - math.log(lo)) / 2 / self._t(0.95)

    def t50_interval(self, luminance: float, level: float = 0.95) -> tuple[float, float]:
        """Two-sided ``level`` interval of T50 (s) at ``luminance`` (Student t in ln T50).
        Outside the measured L0 range the interval also spans the same fit with a bend
        (a quadratic in ln L0): a power law fitted over a factor of a few in L0 says
        little about how T50 goes on beyond it (EQE roll-off bends real devices)."""
        log_t, sd = self._log_t50(luminance)
        half = self._t(level) * sd
        lo, hi = log_t - half, log_t + half
        if self.curved is not None and self.extrapolated(luminance):
            beta, cov, centre = self.curved
            x = math.log(luminance)
            grad = np.array([1.0, -x, -((x - centre) ** 2)])
            log_q = float(grad @ beta)
            half_q = self._t(level, self.n_points - 3) * math.sqrt(max(grad @ cov @ grad, 0.0))
            lo, hi = min(lo, log_q - half_q), max(hi, log_q + half_q)
        return math.exp(lo), math.exp(hi)

    def _log_t50(self, luminance: float) -> tuple[float, float]:
        x = math.log(luminance)
        grad = np.array([1.0, -x])
        var = float(grad @ self.covariance @ grad)
        return self.log_const - self.n * x, math.sqrt(max(var, 0.0))


def _level_labels(log_l0: np.ndarray) -> np.ndarray:
    """Cluster index of each channel's initial luminance (channels set to the same L0
    scatter by a few %: they are one level, not a lever arm for the log–log slope)."""
    order = np.argsort(log_l0)
    gaps = np.diff(log_l0[order]) > math.log(DISTINCT_L0_RATIO)
    labels = np.empty(log_l0.size, dtype=int)
    labels[order] = np.concatenate([[0], np.cumsum(gaps)]) if log_l0.size else []
    return labels


def _wls(
    design: np.ndarray, y: np.ndarray, var: np.ndarray
) -> tuple[np.ndarray, np.ndarray, float]:
    """Coefficients, their covariance and χ² of ``y = design @ coefficients`` with
    independent variances ``var`` (weighted linear least squares)."""
    w = 1.0 / var
    cov = np.linalg.inv(design.T @ (design * w[:, None]))
    beta = cov @ (design.T @ (w * y))
    chi2 = float(np.sum(w * (y - design @ beta) ** 2))
    return beta, cov, chi2


def fit_scaling_exponent(
    l0: Sequence[float], t50_s: Sequence[float], t50_err_s: Sequence[float] | None = None
) -> ScalingFit:
    """Fit the acceleration exponent ``n`` from channels at three or more distinct L0
    (see ``ScalingFit`` for how the uncertainty includes the lack of fit).

    Raises ``ValueError`` (one line: what the channels have, what is needed) otherwise."""
    from scipy.optimize import brentq as root

    # the distributions' survival functions straight from scipy.special (what scipy.stats'
    # chi2.sf and f.sf call): scipy.stats alone would add ~20 MB to a lifetime run
    from scipy.special import chdtrc, fdtrc

    x = np.log(np.asarray(l0, dtype=float))
    y = np.log(np.asarray(t50_s, dtype=float))
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    labels = _level_labels(x)
    levels = int(labels.max()) + 1 if labels.size else 0
    if levels < 3:
        spread = f" ({np.exp(x.min()):.4g}–{np.exp(x.max()):.4g} cd/m^2)" if x.size else ""
        where = "share one initial luminance" if levels == 1 else f"sit at {levels} levels"
        raise ValueError(
            f"acceleration exponent not fitted: the {x.size} channel(s) with a T50 {where}"
            f"{spread}; fitting n needs three or more distinct initial luminances (differing "
            f"by more than {DISTINCT_L0_RATIO - 1:.0%}), or set acceleration_exponent"
        )
    n_pts, dof = int(x.size), int(x.size) - 2
    line = np.column_stack([np.ones_like(x), -x])  # ln T50 = c - n·ln L0
    meas = np.zeros(n_pts)
    if t50_err_s is not None:
        rel = (np.asarray(t50_err_s, dtype=float) / np.asarray(t50_s, dtype=float))[keep]
        if np.all(np.isfinite(rel) & (rel > 0)):
            meas = rel**2
    stated = bool(np.all(meas > 0))
    chi2_red = _wls(line, y, meas)[2] / dof if stated else math.inf
    if stated and chi2_red <= 1:
        scatter2 = 0.0
    elif stated:  # the scatter that makes χ²/dof = 1 (χ² falls monotonically with it)
        top = float(np.var(y)) + float(meas.max())
        scatter2 = root(lambda s2: _wls(line, y, meas + s2)[2] - dof, 0.0, top)
    else:  # ordinary least squares: the residual variance
        resid = y - np.polyval(np.polyfit(x, y, 1), x)
        scatter2 = max(float(np.sum(resid**2)) / dof, 1e-300)
    beta, cov, _ = _wls(line, y, meas + scatter2)
    curved = None
    if n_pts >= 4:
        centre = float(np.mean(x))
        bent = np.column_stack([line, -((x - centre) ** 2)])
        beta_q, cov_q, _ = _wls(bent, y, meas + scatter2)
        curved = (beta_q, cov_q, centre)
    # lack of fit: misfit of the level means to the line against the scatter within levels
    w = 1.0 / (meas + scatter2)
    resid = y - (beta[0] - beta[1] * x)
    pure = 0.0
    for k in range(levels):
        m = labels == k
        pure += float(np.sum(w[m] * (y[m] - np.average(y[m], weights=w[m])) ** 2))
    lof = float(np.sum(w * resid**2)) - pure
    if n_pts > levels and pure > 0:
        p = float(
            fdtrc(levels - 2, n_pts - levels, (lof / (levels - 2)) / (pure / (n_pts - levels)))
        )
        verdict = "yes" if p >= LACK_OF_FIT_P else "no"
        note = (
            f"L0^n·T50 = const {'describes' if verdict == 'yes' else 'does not describe'} the "
            f"data: lack-of-fit p = {p:.2g} over {levels} levels"
        )
    elif stated:
        p = math.nan
        verdict = "yes" if chdtrc(dof, chi2_red * dof) >= LACK_OF_FIT_P else "no"
        note = (
            f"no replicate channels to test the law; χ²/dof = {chi2_red:.3g} against the "
            "T50 uncertainties"
        )
    else:
        p, verdict = math.nan, "untested"
        note = "no replicate channels and no T50 uncertainties: the law cannot be tested"
    if scatter2 > 0 and stated:
        note += (
            f"; uncertainties include ±{math.sqrt(scatter2):.1%} scatter in T50 beyond the stated"
        )
    return ScalingFit(
        n=float(beta[1]),
        n_err=float(math.sqrt(max(cov[1, 1], 0.0))),
        log_const=float(beta[0]),
        covariance=cov,
        n_points=n_pts,
        levels=levels,
        dof=dof,
        chi2_red=float(chi2_red),
        scatter=float(math.sqrt(scatter2)),
        lack_of_fit_p=p,
        describes_data=verdict,
        note=note,
        log_l0_range=(float(x.min()), float(x.max())),
        curved=curved,
    )


def scale_t50(
    t50_s: float,
    l0: float,
    l1: float,
    n: float,
    *,
    t50_err_s: float = 0.0,
    n_err: float = 0.0,
) -> tuple[float, float]:
    """``T50(L1) = T50(L0)·(L0/L1)^n`` and its uncertainty (independent errors, first
    order): σ/T = sqrt((σ_T50/T50)² + (ln(L0/L1)·σ_n)²)."""
    if l0 <= 0 or l1 <= 0:
        raise ValueError("luminances must be positive")
    ratio = math.log(l0 / l1)
    value = t50_s * math.exp(n * ratio)
    rel = math.hypot(t50_err_s / t50_s if t50_s else 0.0, ratio * n_err)
    return value, value * rel
