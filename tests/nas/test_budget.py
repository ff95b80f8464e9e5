"""MACs budgets: parsing, formatting in the papers' style, feasibility and up-front infeasibility."""
import random

import pytest

from foundation.errors import GanasError
from nas.budget import (BudgetError, BudgetInfeasibleError, Budgets, check_budgets, describe_macs, format_macs,
                        parse_budgets, parse_macs)


@pytest.mark.parametrize("text, expected", [
    ("2G", 2_000_000_000),
    ("500M", 500_000_000),
    ("1.5G", 1_500_000_000),
    ("1.5e9", 1_500_000_000),
    ("2.67G", 2_670_000_000),
    ("56799264768", 56_799_264_768),
    ("2_000_000", 2_000_000),
    ("3k", 3_000),
    (" 2 g ", 2_000_000_000),
    ("0.5T", 500_000_000_000),
    ("4.81GMACs", 4_810_000_000),
    ("1e3K", 1_000_000),
    (7, 7),
    (2.5e9, 2_500_000_000),
])
def test_parse_macs(text, expected):
    assert parse_macs(text) == expected


@pytest.mark.parametrize("text, says", [
    ("abc", "not a number"),
    ("", "not a number"),
    ("2X", "K, M, G or T"),
    ("G", "not a number"),
    ("inf", "not a number"),
    ("nan", "not a number"),
    ("1.5", "whole number"),
    ("1.0000000005G", "whole number"),
    ("0", "positive"),
    ("-5M", "positive"),
    (float("nan"), "not finite"),
    (True, "not a number"),
])
def test_parse_macs_rejects_garbage_with_a_typed_error(text, says):
    with pytest.raises(BudgetError, match=says) as info:
        parse_macs(text)
    assert isinstance(info.value, GanasError)
    assert repr(str(text)) in str(info.value) or str(text) in str(info.value)


def test_parse_budgets_sorts_and_drops_duplicates():
    assert parse_budgets("2G,500M,2G") == (500_000_000, 2_000_000_000)
    assert parse_budgets(["1G", 3_000_000_000]) == (1_000_000_000, 3_000_000_000)
    with pytest.raises(BudgetError, match="no MACs budget"):
        parse_budgets(" , ")


@pytest.mark.parametrize("macs, text", [
    (56_799_264_768, "56.8G"),  # the ResNet generator (ANCHORS)
    (2_670_000_000, "2.67G"),
    (4_810_000_000, "4.81G"),
    (1_410_000_000, "1.41G"),
    (500_000_000, "500M"),
    (2_000_000_000, "2G"),
    (999_960_000, "1G"),  # rounding carries into the next unit
    (999, "999"),
    (1_000, "1K"),
    (0, "0"),
])
def test_format_macs_in_the_papers_style(macs, text):
    assert format_macs(macs) == text


def test_format_then_parse_is_within_rounding():
    rng = random.Random(0)
    for _ in range(200):
        macs = int(10 ** rng.uniform(3, 13))
        assert abs(parse_macs(format_macs(macs)) - macs) <= 0.005 * macs


def test_budgets_fitting_and_feasibility():
    budgets = Budgets((2_000, 500, 1_000, 500))
    assert budgets.values == (500, 1_000, 2_000)
    assert budgets.largest == 2_000
    assert budgets.fitting(700) == (1_000, 2_000)
    assert budgets.fitting(500) == (500, 1_000, 2_000)
    assert budgets.feasible(2_000) and not budgets.feasible(2_001)
    assert Budgets().feasible(10**18) and Budgets().largest is None
    with pytest.raises(BudgetError, match="positive integer"):
        Budgets((0,))


def test_check_budgets_names_budget_and_smallest_subnet():
    smallest = 2_604_000_000
    check_budgets([smallest, 5_000_000_000], smallest)  # the boundary is feasible
    with pytest.raises(BudgetInfeasibleError) as info:
        check_budgets([1_000_000_000, 5_000_000_000], smallest, space="channels-64-cycleGAN")
    message = str(info.value)
    assert "1G (1,000,000,000 MACs)" in message
    assert describe_macs(smallest) in message and "2.6G" in message
    assert "channels-64-cycleGAN" in message
    assert "5G" not in message  # only the infeasible budget is named
    assert info.value.exit_code == 2 and isinstance(info.value, GanasError)


def test_check_budgets_lists_every_infeasible_budget():
    with pytest.raises(BudgetInfeasibleError, match=r"budgets 1M .*, 2M .* are below"):
        check_budgets([2_000_000, 1_000_000, 10**10], 3_000_000)
