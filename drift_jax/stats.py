"""Intervals over seeds and comparisons that carry their power, for tables
that must say whether a difference is real and, where it is not shown, how
large it may still be (scipy.stats).

A failed run (a non-finite metric: diverged, crashed) is never dropped
silently: it is counted in `Interval.failed` and excluded from the mean.

Ratio metrics (a distance over its data-vs-data floor, a feature FD) are
positive and skewed, and their seeds' spread grows with their size, so
`log_ratio_comparison` compares them on the log scale: the interval it
reports is that of the ratio a/b (a geometric-mean ratio), its test is
paired or Welch by `choose_test` (one rule, applied once per table), its
verdicts over one sentence's claims are Holm-corrected (`holm`), and a
claim it cannot make states both the ratios the data still allow and the
ratio the design would have detected at 80 % power (`detectable_log_gap`).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from scipy import optimize
from scipy import stats


@dataclasses.dataclass(frozen=True)
class Interval:
  """Mean and two-sided Student-t interval of the finite values; `n` of
  them, `failed` non-finite ones left out. low = high = nan when n < 2."""
  mean: float
  low: float
  high: float
  n: int
  failed: int

  def __str__(self):
    if self.n == 0:
      return f'failed ({self.failed})'
    text = (f'{self.mean:.3g}' if self.n < 2 else
            f'{self.mean:.3g} [{self.low:.3g}, {self.high:.3g}]')
    return text + (f' ({self.failed} failed)' if self.failed else '')


def mean_interval(values, confidence: float = 0.95) -> Interval:
  """Mean +- t_{(1+c)/2, n-1} s / sqrt(n) over the finite `values`."""
  if not 0 < confidence < 1:
    raise ValueError(f'`confidence` must be in (0, 1), got {confidence}.')
  values = np.asarray(values, np.float64).ravel()
  finite = values[np.isfinite(values)]
  failed, n = int(values.size - finite.size), int(finite.size)
  if n == 0:
    return Interval(math.nan, math.nan, math.nan, 0, failed)
  mean = float(finite.mean())
  if n < 2:
    return Interval(mean, math.nan, math.nan, n, failed)
  sem = float(stats.sem(finite))
  if sem == 0:  # identical values (e.g. every seed covers every mode)
    return Interval(mean, mean, mean, n, failed)
  low, high = stats.t.interval(confidence, n - 1, loc=mean, scale=sem)
  return Interval(mean, float(low), float(high), n, failed)


@dataclasses.dataclass(frozen=True)
class Comparison:
  """Paired difference a - b over seeds and what it allows one to say."""
  difference: Interval
  verdict: str  # 'a better', 'b better' or 'not separated'


def paired_comparison(a, b, *, lower_is_better: bool = True,
                      confidence: float = 0.95) -> Comparison:
  """Compares two methods run with the same seeds (a[i] and b[i] share
  seed i) on one metric.

  The difference is the t interval of a - b over the pairs where both
  finished. Failures decide first: if only one method has seeds that failed
  where the other finished, it loses; if both do, 'not separated'.
  Otherwise a method is better only when the interval excludes 0.
  """
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  if a.shape != b.shape or a.ndim != 1:
    raise ValueError(f'Paired values need equal 1-D shapes, got {a.shape} '
                     f'and {b.shape}.')
  ok_a, ok_b = np.isfinite(a), np.isfinite(b)
  both = ok_a & ok_b
  difference = mean_interval(a[both] - b[both], confidence)
  only_a_failed = int(np.sum(~ok_a & ok_b))
  only_b_failed = int(np.sum(ok_a & ~ok_b))
  if only_a_failed and not only_b_failed:
    return Comparison(difference, 'b better')
  if only_b_failed and not only_a_failed:
    return Comparison(difference, 'a better')
  if only_a_failed or difference.n < 2 or not (
      difference.low > 0 or difference.high < 0):
    return Comparison(difference, 'not separated')
  a_lower = difference.high < 0
  return Comparison(difference,
                    'a better' if a_lower == lower_is_better else 'b better')


# -- Comparisons on the log scale, with their power ------------------------

BETTER, WORSE, NOT_SHOWN = 'better', 'worse', 'not shown to differ'
TESTS = ('paired', 'welch')


@dataclasses.dataclass(frozen=True)
class RatioComparison:
  """a against b on a positive metric, on the log scale.

  `ratio` is the geometric-mean ratio a/b with its interval [`low`,
  `high`]; `p_value` the two-sided p of the `test` (NaN when a failure
  decided); `detectable` the ratio (> 1) this design tells from 1 at
  `power` (the observed spread, the same n); `verdict` is a's, before any
  multiplicity correction (`holm` redoes it over a family).
  """
  ratio: float
  low: float
  high: float
  test: str
  p_value: float
  detectable: float
  n: int
  verdict: str

  @property
  def allows(self) -> float:
    """The largest factor, either way, the interval still allows."""
    return max(self.high, 1 / self.low)

  @property
  def ratio_text(self) -> str:
    """'0.3× [0.165, 0.545]': the ratio and its interval."""
    return f'{self.ratio:.3g}× [{self.low:.3g}, {self.high:.3g}]'

  def describe(self, verdict: str | None = None) -> str:
    """'better', 'worse' or 'not shown to differ (allows up to X×)'."""
    verdict = verdict or self.verdict
    if verdict == NOT_SHOWN and math.isfinite(self.allows):
      return f'{verdict} (allows up to {self.allows:.3g}×)'
    return verdict


def _check_test(test):
  if test not in TESTS:
    raise ValueError(f'`test` must be one of {TESTS}, got {test!r}.')


def _positive_logs(name, values):
  values = np.asarray(values, np.float64)
  if values.ndim != 1:
    raise ValueError(f'`{name}` must be 1-D, got shape {values.shape}.')
  finite = values[np.isfinite(values)]
  if np.any(finite <= 0):
    raise ValueError(f'`{name}` must be positive for a log-scale '
                     f'comparison, got {finite[finite <= 0][:3]}.')
  with np.errstate(divide='ignore', invalid='ignore'):
    return np.log(values)


def log_t_test(log_a, log_b, test: str, confidence: float = 0.95):
  """(mean log(a/b), its interval, p, df, se) by a paired t (log_a[i] and
  log_b[i] share seed i; scipy.stats.ttest_rel) or Welch's t
  (scipy.stats.ttest_ind, equal_var=False) on finite values."""
  _check_test(test)
  if test == 'paired':
    result = stats.ttest_rel(log_a, log_b)
    diff = log_a - log_b
    gap, se = float(diff.mean()), float(stats.sem(diff))
  else:
    result = stats.ttest_ind(log_a, log_b, equal_var=False)
    gap = float(log_a.mean() - log_b.mean())
    se = math.sqrt(log_a.var(ddof=1) / log_a.size
                   + log_b.var(ddof=1) / log_b.size)
  ci = result.confidence_interval(confidence)
  return (gap, (float(ci.low), float(ci.high)), float(result.pvalue),
          float(result.df), se)


def choose_test(pairs, confidence: float = 0.95) -> str:
  """The rule for a table: 'paired' where pairing narrows the intervals,
  'welch' otherwise.

  `pairs` are the table's comparisons as (log_a, log_b) arrays over the
  same seeds. For each, pairing changes the half-width of the interval
  from t_{df_W} sqrt(v_a/n + v_b/n) (Welch) to t_{n-1} sqrt(v_d/n), with
  v_d = var(log a - log b): it lowers the variance when seeds are
  positively correlated but costs degrees of freedom (n - 1 against about
  2n - 2). The table is paired when the median ratio of the paired
  half-width to Welch's is below 1, so one test serves every row.
  """
  q = (1 + confidence) / 2
  ratios = []
  for log_a, log_b in pairs:
    ok = np.isfinite(log_a) & np.isfinite(log_b)
    a, b = log_a[ok], log_b[ok]
    n = a.size
    if n < 3:
      continue
    va, vb, vd = a.var(ddof=1), b.var(ddof=1), (a - b).var(ddof=1)
    if va + vb == 0:
      continue
    df_w = welch_df(va, n, vb, n)
    ratios.append(stats.t.ppf(q, n - 1) * math.sqrt(vd)
                  / (stats.t.ppf(q, df_w) * math.sqrt(va + vb)))
  return 'paired' if ratios and float(np.median(ratios)) < 1 else 'welch'


def welch_df(var_a, n_a, var_b, n_b) -> float:
  """Welch-Satterthwaite degrees of freedom."""
  wa, wb = var_a / n_a, var_b / n_b
  return (wa + wb) ** 2 / (wa ** 2 / (n_a - 1) + wb ** 2 / (n_b - 1))


def t_test_power(gap, se, df, alpha: float = 0.05) -> float:
  """Power of a two-sided t test at level `alpha` against a true
  difference `gap` with standard error `se`: P(|T| > t_{1-alpha/2, df})
  for T noncentral t with noncentrality gap / se (scipy.stats.nct)."""
  crit = stats.t.ppf(1 - alpha / 2, df)
  nc = gap / se
  # The wrong-side tail is below alpha / 2 and falls with nc; scipy's nct
  # returns NaN for it at large nc and fractional df, where it is ~0.
  wrong_side = float(stats.nct.cdf(-crit, df, nc))
  return float(stats.nct.sf(crit, df, nc)) + (
      wrong_side if math.isfinite(wrong_side) else 0.0)


def detectable_log_gap(se, df, alpha: float = 0.05,
                       power: float = 0.8) -> float:
  """The true difference (in the units of `se`'s scale: here log units)
  a two-sided t test with this standard error and df detects at `power`:
  the root of t_test_power(gap) = power (scipy.optimize.brentq)."""
  if not (se > 0 and df > 0):
    return math.nan
  if not 0 < power < 1 or not 0 < alpha < 1:
    raise ValueError(f'`power` and `alpha` must be in (0, 1), got '
                     f'{power} and {alpha}.')
  high = se
  while t_test_power(high, se, df, alpha) < power:
    high *= 2
  return float(optimize.brentq(
      lambda g: t_test_power(g, se, df, alpha) - power, 0.0, high,
      xtol=1e-12 * se))


def log_ratio_comparison(a, b, *, test: str = 'paired',
                         lower_is_better: bool = True,
                         alpha: float = 0.05,
                         power: float = 0.8) -> RatioComparison:
  """a against b on a positive metric, on the log scale, at level `alpha`
  (interval confidence 1 - alpha). Paired: a[i] and b[i] share seed i.
  Welch: a and b may have different numbers of seeds (a method with more
  test seeds than its rival keeps them all).

  Failures decide first, as in `paired_comparison`: if only one method
  failed seeds the other finished, it is worse (p = 0: no test needed);
  if both did, the finished runs are compared. With unequal numbers of
  seeds, "only one" means only one has any failure.
  """
  log_a, log_b = _positive_logs('a', a), _positive_logs('b', b)
  _check_test(test)
  ok_a, ok_b = np.isfinite(log_a), np.isfinite(log_b)
  if log_a.shape == log_b.shape:
    use_a = use_b = ok_a & ok_b
    only_a_failed = int(np.sum(~ok_a & ok_b))
    only_b_failed = int(np.sum(ok_a & ~ok_b))
  elif test == 'welch':
    use_a, use_b = ok_a, ok_b
    only_a_failed = int(np.sum(~ok_a)) if ok_b.all() else 0
    only_b_failed = int(np.sum(~ok_b)) if ok_a.all() else 0
  else:
    raise ValueError(f'Paired values need equal shapes, got {log_a.shape} '
                     f'and {log_b.shape}.')
  fa, fb = log_a[use_a], log_b[use_b]
  n = int(min(fa.size, fb.size))
  spread = (np.ptp(fa) + np.ptp(fb) if n >= 2 else 0.0) + (
      np.ptp(fa - fb) if n >= 2 and fa.size == fb.size else 0.0)
  if n >= 2 and spread > 0:
    gap, (low, high), p, df, se = log_t_test(fa, fb, test, 1 - alpha)
    detectable = math.exp(detectable_log_gap(se, df, alpha, power))
  else:
    gap = (float(np.mean(fa) - np.mean(fb)) if fa.size and fb.size
           else math.nan)
    low = high = p = detectable = math.nan
  decided = None
  if only_a_failed and not only_b_failed:
    decided = 'a'
  elif only_b_failed and not only_a_failed:
    decided = 'b'
  if decided is not None:
    a_worse = decided == 'a'
    p = 0.0
  else:
    a_worse = (gap > 0) == lower_is_better
  verdict = (NOT_SHOWN if not p < alpha else WORSE if a_worse else BETTER)
  return RatioComparison(math.exp(gap), math.exp(low), math.exp(high), test,
                         p, detectable, n, verdict)


def holm(p_values, alpha: float = 0.05):
  """Holm's step-down correction over one family of claims: (adjusted p,
  rejected) per claim, in the input order. The adjusted p of the i-th
  smallest is max_{j <= i} min(1, (m - j + 1) p_(j)); NaN p values (no
  test) are left out of the family and never rejected."""
  p = np.asarray(p_values, np.float64)
  adjusted = np.full(p.shape, math.nan)
  tested = np.flatnonzero(np.isfinite(p))
  m = tested.size
  order = tested[np.argsort(p[tested], kind='stable')]
  running = 0.0
  for i, k in enumerate(order):
    running = max(running, min(1.0, (m - i) * p[k]))
    adjusted[k] = running
  return adjusted, np.isfinite(adjusted) & (adjusted < alpha)


def holm_verdicts(comparisons, alpha: float = 0.05) -> list[str]:
  """The verdicts of one family of comparisons after Holm's correction."""
  _, rejected = holm([c.p_value for c in comparisons], alpha)
  return [c.verdict if r else NOT_SHOWN
          for c, r in zip(comparisons, rejected, strict=True)]
