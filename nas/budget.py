"""MACs budgets: parsing ``2G`` / ``500M`` / ``1.5e9``, formatting, and feasibility.

A search may have several budgets at once (GAN Compression reports one subnet per budget);
a candidate counts for every budget it fits under, and is feasible when it fits the largest.
A budget below the space's smallest subnet can never be met: that is detected up front
instead of letting a search spin on rejected samples (the anchors loop forever there).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Iterable, Sequence

from .fields import INT64_MAX, FieldError
from .fields import shown as shown_value

# Decimal SI multipliers; case-insensitive because milli-MACs make no sense.
SI_UNITS: dict[str, int] = {"": 1, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}
_FORMAT_UNITS = (("T", 10**12), ("G", 10**9), ("M", 10**6), ("K", 10**3))
_BUDGET_RE = re.compile(r"^\s*(?P<number>[0-9_.eE+-]+?)\s*(?P<unit>[kKmMgGtT]?)\s*(?:macs?)?\s*$", re.IGNORECASE)


class BudgetError(FieldError):
    """A budget that is not a positive number of MACs the store can hold (the field ``budgets`` of a request)."""

    def __init__(self, message: str, field: str = "budgets") -> None:
        super().__init__(field, message)


class BudgetInfeasibleError(BudgetError):
    """A budget below the MACs of the smallest subnet of the search space."""


def parse_macs(value: str | int | float) -> int:
    """``"2G"`` -> 2_000_000_000; also ``500M``, ``1.5G``, ``1.5e9``, ``2_000_000``, plain ints.

    Units are decimal SI (K, M, G, T; any case). The result must be a positive whole number the store can
    hold (at most 2**63 - 1).
    """
    shown = shown_value(value)
    if isinstance(value, bool):
        raise BudgetError(f"MACs budget {shown} is not a number")
    if isinstance(value, int):
        number, unit = Decimal(value), ""
    else:
        match = _BUDGET_RE.match(value) if isinstance(value, str) else None
        try:
            if isinstance(value, float):
                number, unit = Decimal(repr(value)), ""
            elif match is None:
                raise InvalidOperation
            else:
                number, unit = Decimal(match["number"]), match["unit"].upper()
        except InvalidOperation:
            raise BudgetError(
                f"MACs budget {shown} is not a number with an optional unit K, M, G or T "
                "(e.g. 2G, 500M, 1.5G, 1.5e9, 2000000000)"
            ) from None
    if not number.is_finite():
        raise BudgetError(f"MACs budget {shown} is not finite")
    if number.adjusted() > 30:  # far beyond the bound below: refused before any arithmetic on it
        raise BudgetError(f"MACs budget {shown} is above {INT64_MAX:,} MACs, the most a budget can be")
    macs = number * SI_UNITS[unit]
    if macs != macs.to_integral_value():
        raise BudgetError(f"MACs budget {shown} is not a whole number of MACs ({macs})")
    if macs <= 0:
        raise BudgetError(f"MACs budget {shown} must be positive")
    if macs > INT64_MAX:
        raise BudgetError(f"MACs budget {shown} is above {INT64_MAX:,} MACs, the most a budget can be")
    return int(macs)


def parse_budgets(values: str | Iterable[str | int | float]) -> tuple[int, ...]:
    """Several budgets, as ``"2G,500M"`` or a list; sorted ascending, duplicates dropped."""
    items = [v for v in values.split(",") if v.strip()] if isinstance(values, str) else list(values)
    if not items:
        raise BudgetError("no MACs budget given; give one or more, e.g. 2G or 500M,1G,2G")
    return tuple(sorted({parse_macs(v) for v in items}))


def format_macs(macs: int | float, digits: int = 3) -> str:
    """A MACs count in the papers' style: ``56.8G``, ``2.67G``, ``500M``; ``digits`` significant digits."""
    if digits < 1:
        raise ValueError("digits must be at least 1")
    value = float(macs)
    sign = "-" if value < 0 else ""
    value = abs(value)
    for index, (unit, scale) in enumerate(_FORMAT_UNITS):
        if value >= scale:
            text = f"{value / scale:.{digits}g}"
            # rounding may reach the next unit: 999.96M -> 1000M -> 1G
            if float(text) >= 1000 and index > 0:
                bigger_unit, bigger_scale = _FORMAT_UNITS[index - 1]
                text, unit = f"{value / bigger_scale:.{digits}g}", bigger_unit
            return f"{sign}{_plain(text)}{unit}"
    text = f"{value:.{digits}g}"
    if float(text) >= 1000:
        return f"{sign}{_plain(f'{value / 1000:.{digits}g}')}K"
    return f"{sign}{_plain(text)}"


def _plain(text: str) -> str:
    """``%g`` output without exponent notation (``1e+03`` -> ``1000``)."""
    if "e" in text:
        text = f"{float(text):f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def describe_macs(macs: int) -> str:
    """Formatted and exact, for messages where rounding could hide the difference."""
    return f"{format_macs(macs)} ({int(macs):,} MACs)"


@dataclass(frozen=True)
class Budgets:
    """The MACs budgets of one search, ascending; empty means no MACs constraint."""

    values: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        for value in self.values:
            if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= INT64_MAX:
                raise BudgetError(f"MACs budget {shown_value(value)} must be a positive integer of at most "
                                  f"{INT64_MAX:,} MACs")
        object.__setattr__(self, "values", tuple(sorted(set(self.values))))

    @property
    def largest(self) -> int | None:
        return self.values[-1] if self.values else None

    def feasible(self, macs: int) -> bool:
        """Fits the largest budget (always true without budgets)."""
        return not self.values or macs <= self.values[-1]

    def fitting(self, macs: int) -> tuple[int, ...]:
        """Every budget the candidate counts for."""
        return tuple(b for b in self.values if macs <= b)


def check_budgets(budgets: Sequence[int], smallest_macs: int, space: str | None = None) -> None:
    """Raise :class:`BudgetInfeasibleError` when a budget is below the smallest subnet's MACs.

    ``smallest_macs`` is the MACs of the space's smallest config (MACs grow with every width,
    so nothing in the space is cheaper). All infeasible budgets are named at once.
    """
    where = f" of search space {space}" if space else ""
    too_small = [b for b in Budgets(tuple(budgets)).values if b < smallest_macs]
    if not too_small:
        return
    shown = ", ".join(describe_macs(b) for b in too_small)
    several = len(too_small) > 1
    raise BudgetInfeasibleError(
        f"MACs budget{'s' if several else ''} {shown} {'are' if several else 'is'} below the smallest subnet"
        f"{where}, {describe_macs(smallest_macs)}: no config can meet {'them' if several else 'it'}; "
        f"use budgets of at least {int(smallest_macs):,} MACs or a search space with narrower choices"
    )
