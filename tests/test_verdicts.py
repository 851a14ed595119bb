"""Words follow intervals (issue 25, DESIGN.md section 4): "better" only when the 95%
interval clears zero, "no worse by more than m" only from a margin fixed beforehand,
Holm over a report's claims, NaN "could not measure", zero spread no interval, and the
share of a gap closed as a ratio of means with Fieller's interval over every seed."""

from __future__ import annotations

import math

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy import stats as scipy_stats

from explorer.studies.stats import (
    COULD_NOT_MEASURE,
    NO_SPREAD,
    NOT_SHOWN,
    ONE_SEED,
    claim,
    fmt,
    holm,
    paired,
    ratio_of_means,
    summarize,
)

# Per-seed differences as a reproduction gives them: a few seeds, fractions of a point
# to tens of points (errors and accuracies are fractions; compression is tens).
diffs = st.lists(st.floats(-50, 50, allow_nan=False, allow_infinity=False), min_size=2,
                 max_size=8)
SHOWN_WORDS = {"better", "no worse by more than the margin", "within the margin"}


def _comparison(values: list[float]) -> dict:
    return paired(values, [0.0] * len(values))


def _with_p(p: float, n: int = 5, sign: float = 1.0) -> list[float]:
    """n differences whose paired t-test (against zero) has two-sided p-value `p`."""
    base = [k - (n - 1) / 2 for k in range(n)]
    sd = math.sqrt(sum(b * b for b in base) / (n - 1))
    t = scipy_stats.t.isf(p / 2, n - 1)
    return [sign * (t / math.sqrt(n) + b / sd) for b in base]


def _holm_by_hand(ps: list[float]) -> list[float]:
    """Holm's step-down adjusted p-values, written out as the textbook gives them."""
    m = len(ps)
    order = sorted(range(m), key=lambda i: ps[i])
    adjusted = [0.0] * m
    for rank, i in enumerate(order):
        adjusted[i] = min(1.0, max((m - r) * ps[order[r]] for r in range(rank + 1)))
    return adjusted


@settings(max_examples=100, deadline=None)
@given(diffs, st.sampled_from(["higher", "lower"]))
def test_an_interval_containing_zero_never_reads_better(values, want):
    """Whatever the seeds gave: if the 95% interval holds zero, neither the comparison nor
    a claim on it (alone, or among others after Holm) says higher, lower or better."""
    comp = _comparison(values)
    low, high = comp["ci95_low"], comp["ci95_high"]
    c = claim("x", comp, want)
    others = [claim("y", _comparison(_with_p(0.001)), "higher")]
    holm([c, *others])
    if low is None or low <= 0 <= high:
        assert comp["verdict"] not in ("higher", "lower")
        assert c["verdict"] not in ("better", "worse") and c["holds"] is not True
    if low is not None and (low > 0 if want == "higher" else high < 0):
        assert c["verdict_unadjusted"] == "better" or c["p_value"] >= 0.05 - 1e-9


@settings(max_examples=100, deadline=None)
@given(diffs, st.floats(0.01, 20), st.sampled_from(["not lower", "not higher", "within"]))
def test_a_margin_claim_holds_only_when_the_interval_clears_the_margin(values, m, want):
    """Non-inferiority / equivalence: shown only when the 95% interval lies past -m (or
    below +m, or inside both); then the claim's p-value is below 0.05."""
    comp = _comparison(values)
    c = claim(f"no worse by more than {m}", comp, want, margin=m)
    if c["holds"]:
        low, high = comp["ci95_low"], comp["ci95_high"]
        assert {"not lower": low > -m, "not higher": high < m,
                "within": -m < low and high < m}[want]
        assert c["p_value"] < 0.05 and c["verdict"] in SHOWN_WORDS


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(1e-6, 1.0), min_size=1, max_size=12))
def test_holm_adjusted_p_values_equal_the_hand_computation(ps):
    """p_holm of each claim = Holm's step-down value; verdicts follow p_holm < 0.05."""
    claims = [claim("x", _comparison(_with_p(p)), "higher") for p in ps]
    got = [c["p_value"] for c in claims]
    assert got == pytest.approx(ps, rel=1e-6)
    holm(claims)
    for c, expected in zip(claims, _holm_by_hand(got)):
        assert c["p_holm"] == pytest.approx(expected, rel=1e-12)
        assert c["family"] == len(ps)
        assert c["holds"] == (c["p_holm"] < 0.05)
        assert c["verdict"] == ("better" if c["p_holm"] < 0.05 else NOT_SHOWN)


def test_holm_by_hand_on_four_numbers():
    """0.01, 0.04, 0.03, 0.20 -> 0.04, 0.09, 0.09, 0.20 (the textbook example's shape)."""
    claims = holm([claim("x", _comparison(_with_p(p)), "higher")
                   for p in (0.01, 0.04, 0.03, 0.20)])
    assert [c["p_holm"] for c in claims] == pytest.approx([0.04, 0.09, 0.09, 0.20])
    assert [c["verdict"] for c in claims] == ["better", NOT_SHOWN, NOT_SHOWN, NOT_SHOWN]


def test_p_003_alone_is_better_but_among_8_claims_not_shown():
    """One claim at p = 0.03 is shown; the same claim among 8 (Holm: 8 x 0.03 = 0.24) reads
    "not shown", and holm() run twice changes nothing."""
    alone = claim("x", _comparison(_with_p(0.03)), "higher")
    assert alone["p_value"] == pytest.approx(0.03) and alone["verdict"] == "better"
    family = [claim("x", _comparison(_with_p(0.03)), "higher"),
              *(claim(f"y{i}", _comparison(_with_p(0.5 + i / 20)), "higher")
                for i in range(7))]
    holm(family)
    assert family[0]["p_holm"] == pytest.approx(0.24)
    assert family[0]["verdict"] == NOT_SHOWN and family[0]["holds"] is False
    assert family[0]["verdict_unadjusted"] == "better"
    before = [dict(c) for c in family]
    assert holm(family) == before


def test_the_opposite_direction_reads_worse():
    c = holm([claim("x", _comparison(_with_p(0.001, sign=-1.0)), "higher")])[0]
    assert c["verdict"] == "worse" and c["holds"] is False


def test_nan_is_could_not_measure_never_no_difference():
    """A NaN seed: no interval, "could not measure", no claim either way."""
    comp = paired([0.9, math.nan, 0.8], [0.8, 0.8, 0.8])
    assert comp["verdict"] == COULD_NOT_MEASURE and comp["ci95_low"] is None
    c = holm([claim("x", comp, "higher"), claim("y", _comparison(_with_p(0.01)), "higher")])
    assert c[0]["verdict"] == COULD_NOT_MEASURE and c[0]["holds"] is None
    assert c[1]["family"] == 1  # an unmeasured claim is not a test Holm counts
    assert summarize([1.0, math.nan])["note"] == COULD_NOT_MEASURE
    assert fmt(summarize([math.nan, math.nan])) == COULD_NOT_MEASURE
    assert ratio_of_means([1.0, math.nan], [2.0, 2.0])["note"] == COULD_NOT_MEASURE


@settings(deadline=None)  # a loaded machine: no per-example time limit
@given(st.floats(-1, 1, allow_nan=False), st.integers(2, 6))
def test_identical_seeds_give_no_interval_and_no_claim(value, n):
    """Zero spread is not a point interval: it says so, and no claim is made on it."""
    comp = paired([value + 0.5] * n, [0.5] * n)
    assert comp["ci95_low"] is None and comp["p_value"] is None
    assert comp["verdict"] == NO_SPREAD
    c = claim("x", comp, "higher")
    assert c["verdict"] == NO_SPREAD and c["holds"] is None
    s = summarize([value] * n)
    assert s["ci95_low"] is None and s["note"] == NO_SPREAD
    assert paired([1.0], [0.0])["verdict"] == ONE_SEED


def test_claims_refuse_a_missing_or_stray_margin():
    comp = _comparison([1.0, 2.0, 3.0])
    for kwargs, word in (({"want": "not higher"}, "None"), ({"want": "higher", "margin": 1.0},
                                                          "1.0"),
                         ({"want": "within", "margin": -1.0}, "-1.0"),
                         ({"want": "match"}, "match")):
        with pytest.raises(ValueError, match=word):
            claim("x", comp, **kwargs)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(-100, 100), st.integers(-30, 30)), min_size=2,
                max_size=8), st.integers(-100, 100))
def test_fieller_interval_covers_the_ratio_and_its_bounds_are_exact(pairs, gap):
    """Bounded, the interval holds mean(num) / mean(den); at each bound r the per-seed
    values num - r den have a t-statistic of exactly t(0.975, n - 1) (Fieller's set).
    Differences of error rates on 1,000 test images: multiples of 0.001."""
    num, den = [p[0] / 1000 for p in pairs], [(gap + p[1]) / 1000 for p in pairs]
    r = ratio_of_means(num, den)
    assume(r["ci95_low"] is not None)
    assert r["mean"] == pytest.approx(sum(num) / sum(den))
    assert r["ci95_low"] <= r["mean"] <= r["ci95_high"]
    n, t = len(num), scipy_stats.t.ppf(0.975, len(num) - 1)
    for bound in (r["ci95_low"], r["ci95_high"]):
        z = [a - bound * b for a, b in zip(num, den)]
        mean = sum(z) / n
        se = math.sqrt(sum((v - mean) ** 2 for v in z) / (n - 1) / n)
        assume(se > 1e-6)
        assert abs(mean) / se == pytest.approx(t, rel=1e-6, abs=1e-6)


def test_gap_closed_uses_every_seed_a_negative_gap_included():
    """Hinton's gap closed: mean(alone - distilled) / mean(alone - teacher) over all five
    seeds; a seed whose teacher is worse than its student stays in."""
    from explorer.studies.hinton import gap_closed

    alone = [0.070, 0.072, 0.068, 0.071, 0.060]
    teacher = [0.050, 0.049, 0.052, 0.051, 0.065]  # seed 4: the teacher is worse
    distilled = [0.062, 0.064, 0.061, 0.063, 0.061]
    g = gap_closed(alone, distilled, teacher)
    num = [a - d for a, d in zip(alone, distilled)]
    den = [a - t for a, t in zip(alone, teacher)]
    assert g["n"] == 5 and g["mean"] == pytest.approx(sum(num) / sum(den))
    kept = [i for i in range(5) if den[i] > 0]  # what dropping would have given
    assert g["mean"] != pytest.approx(sum(num[i] for i in kept) / sum(den[i] for i in kept))
    assert g["ci95_low"] <= g["mean"] <= g["ci95_high"]
    unclear = gap_closed(alone[:4], distilled[:4], [0.071, 0.070, 0.067, 0.072])
    assert unclear["ci95_low"] is None and "not clearly away from zero" in unclear["note"]
    none = gap_closed(alone[:4], distilled[:4], alone[:4])  # no gap at all: 0 / 0
    assert none["note"] == COULD_NOT_MEASURE
