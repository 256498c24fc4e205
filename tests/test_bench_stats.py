"""The statistics the speed benchmarks report: ``fit_step.paired_ratio`` (median of paired ratios with a
distribution-free confidence interval)."""

from __future__ import annotations

import random
import sys
from math import comb
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from fit_step import paired_ratio  # noqa: E402


def test_interval_is_the_binomial_order_statistics():
    a = [float(i) for i in range(1, 32)]  # ratios 1..31 against ones: sorted already
    p = paired_ratio(a, [1.0] * 31)
    assert p["median"] == 16.0 and p["n"] == 31 and p["below_1"] == 0
    # n = 31: P(B <= 9) = 0.0147 <= 0.025 < P(B <= 10) = 0.0354, so the interval is the 10th and 22nd values
    assert sum(comb(31, i) for i in range(10)) / 2**31 <= 0.025 < sum(comb(31, i) for i in range(11)) / 2**31
    assert (p["ci_low"], p["ci_high"]) == (10.0, 22.0)


def test_interval_covers_the_true_median_about_95_percent_of_the_time():
    rng = random.Random(0)
    hits = 0
    for _ in range(400):
        a = [rng.lognormvariate(0.0, 0.05) for _ in range(31)]  # true median ratio 1.0
        p = paired_ratio(a, [1.0] * 31)
        hits += p["ci_low"] <= 1.0 <= p["ci_high"]
    assert 0.93 <= hits / 400 <= 0.995


def test_too_few_repeats_give_the_whole_range_and_no_level():
    p = paired_ratio([1.0, 2.0, 3.0], [1.0, 1.0, 1.0])
    assert p["level"] is None and (p["ci_low"], p["ci_high"]) == (1.0, 3.0)


def test_unequal_lengths_are_refused():
    with pytest.raises(ValueError):
        paired_ratio([1.0, 2.0], [1.0])
