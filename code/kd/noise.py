"""The course's one noise rule: when is a difference a gain, a loss, or a tie? Nothing here imports torch.

A difference between two settings (distilled against its no-teacher control, an ablation row against the triple loss,
this run against the committed one) is judged by a 95% interval around it: **gain** or **loss** when the interval
leaves zero out, **tie** when it holds zero. Which interval depends on what was run:

- **paired** (the same seeds in both arms, at least two): the differences seed by seed, d_1..d_k; their mean ± t·s/√k,
  s their standard deviation and t Student's 97.5% point with k - 1 degrees of freedom (a paired t-test at 5%).
  Pairing takes out what both arms share (the initial copy, the data order, the test set: both arms are scored on
  the same items); t pays for knowing s from few seeds: 12.7 for two, 4.3 for three, 2.4 for eight. s is at least
  the score's resolution (one test item), so that differences equal by rounding do not make a zero-width interval;
- **one run each** (or seeds not shared): the difference ± 2·sqrt(se_a² + se_b²), se the noise of each number: the
  standard error of its test set (sqrt(p(1 - p) / n) for a share, (1 - r²)/sqrt(n - 1) for a correlation), or, for a
  mean over seeds, the larger of that and the seeds' standard error.

Why one rule: four rules that disagree let the same difference be a gain in one table and a tie in the next.
"""
from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass

# Student's t, 97.5% quantile, by degrees of freedom 1..30; beyond 30, the normal's 1.96
T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
        2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042)
Z = 2.0  # one run each: about the normal's 95% point, as the course has always written "twice the noise"


def t975(df: int) -> float:
    if df < 1:
        raise ValueError("a paired interval needs at least two pairs (one degree of freedom)")
    return T975[df - 1] if df <= len(T975) else 1.96


@dataclass(frozen=True)
class Verdict:
    diff: float    # a - b: the mean of the paired differences, or the difference of the two numbers
    margin: float  # half-width of the 95% interval around diff
    pairs: int     # seed pairs behind diff (1: one run each)
    rule: str      # "paired" or "single"

    @property
    def verdict(self) -> str:
        return "gain" if self.diff > self.margin else "loss" if self.diff < -self.margin else "tie"

    @property
    def interval(self) -> str:
        """The difference and its 95% half-width, as the tables print them: "+0.4 ± 1.2"."""
        return f"{round(self.diff, 1) + 0.0:+.1f} ± {self.margin:.1f}"  # + 0.0: no "-0.0"

    def __str__(self) -> str:
        return f"{self.interval} ({self.verdict})"

    def as_dict(self) -> dict:
        return {**asdict(self), "verdict": self.verdict}

    @classmethod
    def from_dict(cls, d: dict) -> "Verdict":
        """A verdict read back from a record (as_dict's output), to print as str() does."""
        return cls(d["diff"], d["margin"], d["pairs"], d["rule"])


def paired(a: list[float], b: list[float], floor: float = 0.0) -> Verdict:
    """a[i] and b[i] ran with the same seed (the caller keeps both in seed order). At least two pairs. floor: the
    smallest standard deviation of the differences believed (the score's resolution, e.g. 100 / n points)."""
    if len(a) != len(b) or len(a) < 2:
        raise ValueError(f"paired needs the same seeds in both arms, at least two (got {len(a)} and {len(b)} runs)")
    d = [x - y for x, y in zip(a, b)]
    k = len(d)
    return Verdict(statistics.mean(d), t975(k - 1) * max(statistics.stdev(d), floor) / math.sqrt(k), k, "paired")


def single(a: float, b: float, noise_a: float, noise_b: float) -> Verdict:
    """One number each, with its noise (a standard error, see the module's docstring)."""
    return Verdict(a - b, Z * math.hypot(noise_a, noise_b), 1, "single")


def compare(a: list[float], b: list[float], noise_a: float = 0.0, noise_b: float = 0.0, floor: float = 0.0) -> Verdict:
    """The rule: paired where both arms ran the same two or more seeds (a[i], b[i] the same seed, in the same order:
    the caller's to keep), else one number each (a mean where there are several) with its noise. A verdict from no
    runs is an error, never a tie. floor: see paired."""
    if not a or not b:
        raise ValueError("a comparison needs runs in both arms: run the control too")
    if len(a) == len(b) >= 2:
        return paired(a, b, floor)
    return single(statistics.mean(a), statistics.mean(b), noise_a, noise_b)


def share_se(p: float, n: int) -> float:
    """Standard error of a share p (between 0 and 1, not a percentage) measured on n items (a binomial proportion)."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"share_se takes a share between 0 and 1, got {p}: divide a percentage by 100")
    return math.sqrt(p * (1 - p) / max(n, 1))


def correlation_se(r: float, n: int) -> float:
    """Approximate standard error of a correlation r (MCC) on n items."""
    return (1 - r * r) / math.sqrt(max(n - 1, 1))


def mean_noise(values: list[float], test_se: float) -> float:
    """The noise of a mean over seeds: the larger of its test set's standard error and the seeds' standard error."""
    seeds = statistics.stdev(values) / math.sqrt(len(values)) if len(values) > 1 else 0.0
    return max(test_se, seeds)
