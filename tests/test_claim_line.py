"""How `explorer reproduce` prints a claim it could not test."""

from __future__ import annotations

from explorer.studies.reproduce import claim_line
from explorer.studies.stats import claim, paired


def test_a_one_seed_claim_says_how_to_test_it():
    one = claim("pruned beats dense", paired([0.91], [0.90]), "higher")
    line = claim_line(one)
    assert line.startswith("untested (no interval: one seed; --seeds N, N >= 2, gives one)")
    assert line.endswith(": pruned beats dense")


def test_a_claim_with_no_spread_gets_no_seeds_hint():
    flat = claim("same", paired([0.9, 0.9], [0.8, 0.8]), "higher")
    assert "untested (" in claim_line(flat) and "--seeds" not in claim_line(flat)
