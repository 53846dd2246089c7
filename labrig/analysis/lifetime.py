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

  Parameter uncertainties are the square roots of the covariance diagonal (scaled by the
  residual variance).  The better model is the one with the lowest **AICc**,
  ``AICc = N·ln(RSS/N) + 2k + 2k(k+1)/(N-k-1)`` (Burnham & Anderson 2002), which
  penalises the extra parameters of the two-component model on short or noisy data.
* **Predicted (or extrapolated) T50**: the time the best model falls to the fraction of
  its own fitted initial value ``A``, with an uncertainty band from sampling the
  parameters from their fitted multivariate normal distribution (the band's quantiles)
  and a standard deviation from the same samples.
* **Luminance scaling**: ``T50(L1) = T50(L0)·(L0/L1)^n``; ``n`` given, or fitted by
  weighted least squares of ``ln T50 = c - n·ln L0`` over channels at three or more
  distinct initial luminances, with the uncertainty of ``n`` from the fit covariance.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from scipy.optimize import OptimizeWarning, brentq, curve_fit
from scipy.optimize.elementwise import find_root

Reference = Literal["initial", "peak"]
#: a fitted time constant this many times longer than the data is not determined by them
UNCONSTRAINED_SPAN_RATIO = 100.0
ModelName = Literal["single", "double", "stretched"]

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
def _single(t: np.ndarray, a: float, tau: float) -> np.ndarray:
    return a * np.exp(-t / tau)


def _double(t: np.ndarray, a: float, f: float, tau1: float, tau2: float) -> np.ndarray:
    return a * (f * np.exp(-t / tau1) + (1.0 - f) * np.exp(-t / tau2))


def _stretched(t: np.ndarray, a: float, tau: float, beta: float) -> np.ndarray:
    return a * np.exp(-np.power(np.maximum(t, 0.0) / tau, beta))


# analytic Jacobians: several times fewer model evaluations than finite differences
def _single_jac(t: np.ndarray, a: float, tau: float) -> np.ndarray:
    e = np.exp(-t / tau)
    return np.column_stack([e, a * e * t / tau**2])


def _double_jac(t: np.ndarray, a: float, f: float, tau1: float, tau2: float) -> np.ndarray:
    e1, e2 = np.exp(-t / tau1), np.exp(-t / tau2)
    return np.column_stack(
        [
            f * e1 + (1 - f) * e2,
            a * (e1 - e2),
            a * f * e1 * t / tau1**2,
            a * (1 - f) * e2 * t / tau2**2,
        ]
    )


def _stretched_jac(t: np.ndarray, a: float, tau: float, beta: float) -> np.ndarray:
    x = np.maximum(t, 0.0) / tau
    xb = np.power(x, beta)
    e = np.exp(-xb)
    log_x = np.log(np.where(x > 0, x, 1.0))
    return np.column_stack([e, a * e * beta * xb / tau, -a * e * xb * log_x])


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
    def _vector(self) -> np.ndarray:
        return np.array([self.params[n] for n in _SPECS[self.model].names])

    def evaluate(self, time_s: np.ndarray | float) -> np.ndarray:
        """Model L/L_ref on the run's time axis."""
        t = np.asarray(time_s, dtype=float) - self.time_offset_s
        return _SPECS[self.model].func(t, *self._vector)

    def t_fraction(self, fraction: float) -> float:
        """Run time at which the model falls to ``fraction`` of its fitted initial value."""
        return self.time_offset_s + _model_t_fraction(self.model, self._vector, fraction)

    def t_fraction_band(
        self, fraction: float, *, level: float = 0.95, samples: int = 2000, seed: int = 0
    ) -> tuple[float, float, float]:
        """(low, high, standard deviation) of the time to ``fraction``, from parameter
        sets drawn from the fit's multivariate normal distribution."""
        if not self.constrained:
            return self.time_offset_s, math.inf, math.inf
        values = _sample_t_fraction(self, fraction, samples=samples, seed=seed)
        finite = values[np.isfinite(values)]
        if finite.size < 0.5 * values.size:
            return math.nan, math.inf, math.inf
        # inverted-CDF quantiles: draws that never reach the fraction are +inf, and
        # interpolating between inf and a number would give NaN instead of an open band
        lo, hi = np.quantile(values, [(1 - level) / 2, (1 + level) / 2], method="inverted_cdf")
        return (
            self.time_offset_s + float(lo),
            self.time_offset_s + float(hi),
            float(np.std(finite, ddof=1)),
        )


def _model_t_fraction(model: str, p: np.ndarray, fraction: float) -> float:
    """Time (model axis) when the model falls to ``fraction``·A."""
    if model == "single":
        return float(p[1] * math.log(1 / fraction))
    if model == "stretched":
        return float(p[1] * math.log(1 / fraction) ** (1 / p[2]))
    _, f, tau1, tau2 = (float(v) for v in p)
    hi = float(_double_bracket(tau1, tau2, fraction))
    return float(
        brentq(lambda t: _double(t, 1.0, f, tau1, tau2) - fraction, 0.0, hi, xtol=1e-12 * hi)
    )


def _sample_t_fraction(fit: DecayFit, fraction: float, *, samples: int, seed: int) -> np.ndarray:
    """Times to ``fraction`` for parameter sets drawn from the fit's distribution.  Time
    constants are drawn log-normally (their delta-method log-space covariance): they are
    positive and their likelihood is skewed towards long times, which a symmetric draw
    would cut off exactly where an extrapolated T50 is most uncertain."""
    rng = np.random.default_rng(seed)
    mean = fit._vector
    cov = np.asarray(fit.covariance, dtype=float)
    if not np.all(np.isfinite(cov)):
        return np.full(samples, math.inf)
    idx = list(_SPECS[fit.model].time_params)
    scale = np.ones(mean.size)
    scale[idx] = mean[idx]
    centre = mean.copy()
    centre[idx] = np.log(mean[idx])
    draws = rng.multivariate_normal(
        centre, cov / np.outer(scale, scale), size=samples, check_valid="ignore"
    )
    draws[:, idx] = np.exp(draws[:, idx])
    spec = _SPECS[fit.model]
    # a parameter set outside the model's domain (τ ≤ 0, f ∉ [0,1]) is a draw the model
    # cannot represent: count it as "never reaches" rather than dropping it, so a poorly
    # constrained fit gets a wide (honest) band, not a narrow one
    valid = np.all((draws > np.array(spec.lower)) & (draws <= np.array(spec.upper)), axis=1)
    out = np.full(samples, math.inf)
    p = draws[valid]
    log_inv = math.log(1 / fraction)
    if fit.model == "single":
        out[valid] = p[:, 1] * log_inv
    elif fit.model == "stretched":
        out[valid] = p[:, 1] * log_inv ** (1 / p[:, 2])
    elif p.size:
        f, tau1, tau2 = p[:, 1], p[:, 2], p[:, 3]
        root = find_root(
            lambda t, f, t1, t2: _double(t, 1.0, f, t1, t2) - fraction,
            (np.zeros(len(p)), _double_bracket(tau1, tau2, fraction)),
            args=(f, tau1, tau2),
        )
        out[valid] = np.where(root.success, root.x, math.inf)
    return out


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
) -> DecayFit:
    """Least-squares fit of one decay model to L/L_ref (data from the reference on).

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
    best: tuple[float, np.ndarray, np.ndarray] | None = None
    for p0 in _starts(model):
        try:
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore", OptimizeWarning)
                popt, pcov = curve_fit(
                    spec.func,
                    ts,
                    y,
                    p0=p0,
                    jac=spec.jac,
                    bounds=(spec.lower, spec.upper),
                    x_scale="jac",
                    max_nfev=4000,
                )
        except (RuntimeError, ValueError):
            continue
        rss = float(np.sum((spec.func(ts, *popt) - y) ** 2))
        if best is None or rss < best[0]:
            best = (rss, popt, pcov)
    if best is None:
        raise ValueError(f"{model} fit did not converge")
    rss, popt, pcov = best
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
    )


def fit_models(
    time_s: Sequence[float],
    luminance: Sequence[float],
    *,
    models: Sequence[ModelName] = MODELS,
    reference: Reference = "initial",
) -> list[DecayFit]:
    """Every model that converges, best (lowest AICc) first."""
    fits = []
    for model in models:
        try:
            fits.append(fit_decay(time_s, luminance, model, reference=reference))
        except ValueError:
            continue
    return sorted(fits, key=lambda f: f.aicc)


def best_fit(fits: Sequence[DecayFit]) -> DecayFit:
    """The model with the lowest AICc."""
    if not fits:
        raise ValueError("no fit converged")
    return min(fits, key=lambda f: f.aicc)


# -------------------------------------------------------------------- prediction
@dataclass(frozen=True)
class LifetimePrediction:
    """A predicted (or extrapolated) time to a luminance fraction, with its band."""

    fraction: float
    value_s: float
    std_s: float
    low_s: float
    high_s: float
    level: float
    model: str
    fit: DecayFit = field(repr=False)

    @property
    def relative_width(self) -> float:
        """Full band width over the value: what an early-stop rule compares."""
        if not (self.value_s > 0 and math.isfinite(self.high_s)):
            return math.inf
        return (self.high_s - self.low_s) / self.value_s


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
) -> LifetimePrediction:
    """Fit every model, keep the lowest-AICc one, and return its time to ``fraction``
    with a ``level`` band from the parameter covariance.  Used both for the early
    prediction while a run goes on and for extrapolating a channel that stopped early."""
    fit = best_fit(fit_models(time_s, luminance, models=models, reference=reference))
    return prediction_from_fit(
        fit, time_s, luminance, fraction, level=level, samples=samples, seed=seed
    )


def prediction_from_fit(
    fit: DecayFit,
    time_s: Sequence[float],
    luminance: Sequence[float],
    fraction: float = 0.5,
    *,
    level: float = 0.95,
    samples: int = 2000,
    seed: int = 0,
) -> LifetimePrediction:
    """The time to ``fraction`` from ``fit`` (made on these data) with its band."""
    value = fit.t_fraction(fraction)
    low, high, std = fit.t_fraction_band(fraction, level=level, samples=samples, seed=seed)
    # the band must contain the point estimate even for skewed sample distributions
    low, high = min(low, value), max(high, value)
    # and where the data have not fallen to the fraction yet, T is beyond the last point
    reached = t_fraction(time_s, luminance, fraction, reference=fit.reference)
    if math.isnan(reached):
        last = float(np.nanmax(np.asarray(time_s, dtype=float)))
        low = max(low, last)
        high = max(high, low)
    return LifetimePrediction(fraction, value, std, low, high, level, fit.model, fit)


# ---------------------------------------------------------------- luminance scaling
@dataclass(frozen=True)
class ScalingFit:
    """``ln T50 = c - n·ln L0``, i.e. ``L0^n·T50 = exp(c)``, with its covariance."""

    n: float
    n_err: float
    log_const: float
    covariance: np.ndarray = field(repr=False)  # of (c, n)
    n_points: int

    def t50_at(self, luminance: float) -> tuple[float, float]:
        """T50 (s) at ``luminance`` and its 1-σ uncertainty from the fit covariance."""
        x = math.log(luminance)
        grad = np.array([1.0, -x])
        log_t = self.log_const - self.n * x
        var = float(grad @ self.covariance @ grad)
        t = math.exp(log_t)
        return t, t * math.sqrt(max(var, 0.0))


#: initial luminances closer than this ratio count as one level when fitting n
DISTINCT_L0_RATIO = 1.2


def _distinct_levels(log_l0: np.ndarray) -> int:
    """How many clusters of initial luminance (channels set to the same L0 scatter by a
    few %: they must not pass as a lever arm for the log–log slope)."""
    if log_l0.size == 0:
        return 0
    gaps = np.diff(np.sort(log_l0))
    return 1 + int(np.sum(gaps > math.log(DISTINCT_L0_RATIO)))


def fit_scaling_exponent(
    l0: Sequence[float], t50_s: Sequence[float], t50_err_s: Sequence[float] | None = None
) -> ScalingFit:
    """Fit the acceleration exponent ``n`` from channels at three or more distinct L0.

    Weighted by the relative T50 uncertainties when given; otherwise the covariance is
    scaled by the scatter about the line."""
    x = np.log(np.asarray(l0, dtype=float))
    y = np.log(np.asarray(t50_s, dtype=float))
    keep = np.isfinite(x) & np.isfinite(y)
    if _distinct_levels(x[keep]) < 3:
        raise ValueError(
            "fitting n needs T50 at three or more distinct initial luminances "
            f"(differing by more than {DISTINCT_L0_RATIO - 1:.0%})"
        )
    sigma = None
    absolute = False
    if t50_err_s is not None:
        rel = np.asarray(t50_err_s, dtype=float) / np.asarray(t50_s, dtype=float)
        if np.all(np.isfinite(rel[keep]) & (rel[keep] > 0)):
            sigma, absolute = rel[keep], True
    popt, pcov = curve_fit(
        lambda xx, c, n: c - n * xx,
        x[keep],
        y[keep],
        p0=[float(np.mean(y[keep])), 1.5],
        sigma=sigma,
        absolute_sigma=absolute,
    )
    return ScalingFit(
        n=float(popt[1]),
        n_err=float(math.sqrt(max(pcov[1, 1], 0.0))),
        log_const=float(popt[0]),
        covariance=pcov,
        n_points=int(keep.sum()),
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
