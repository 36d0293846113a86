"""Minor units: ISO 4217 exponents of the currencies payments accepts, and exact splitting.

Amounts are always integer minor units; the exponent says how many decimal places a major unit
has (1 USD = 10**2 cents, 1 KWD = 10**3 fils, the rial has none in ISO 4217 even though prices
are quoted in tomans). The table is deliberately small: a currency is accepted only once someone
has checked its exponent against the ISO 4217 list (SIX, "List One"), because a wrong exponent
silently multiplies amounts by powers of ten at a provider.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType

from payments.errors import UnknownCurrencyError

MAX_SPLITS = 16  # weights one allocation accepts; bounds the leftover loop below

# ISO 4217 "minor unit" column, checked against SIX's List One. Keep every code in
# signatures.envelope.ISO_4217_CURRENCIES as well (a test asserts it).
CURRENCY_EXPONENTS: Mapping[str, int] = MappingProxyType(
    {
        "IRR": 0,  # Iranian rial: the service's home currency
        "AED": 2,
        "CHF": 2,
        "CNY": 2,
        "EUR": 2,
        "GBP": 2,
        "TRY": 2,
        "USD": 2,
        "JPY": 0,
        "KRW": 0,
        "BHD": 3,
        "IQD": 3,
        "JOD": 3,
        "KWD": 3,
        "OMR": 3,
    }
)


def exponent(currency: str) -> int:
    """The number of minor-unit decimal places of `currency` (IRR 0, USD 2, KWD 3).

    Raises UnknownCurrencyError when the code is not in CURRENCY_EXPONENTS.
    """
    try:
        return CURRENCY_EXPONENTS[currency]
    except KeyError:
        raise UnknownCurrencyError(currency) from None


def is_accepted_currency(currency: str) -> bool:
    """Whether `currency` is in CURRENCY_EXPONENTS."""
    return currency in CURRENCY_EXPONENTS


# --- splitting an amount exactly over weights -----------------------------------------------------


def allocate_cumulative(total_minor: int, *, weights_minor: Sequence[int]) -> tuple[int, ...]:
    """Split `total_minor` over weights (0 ≤ total ≤ Σ weights) by largest quotients (D'Hondt).

    Each weight first gets floor(total × w / Σw); the units left over (fewer than the number of
    weights) go one at a time to the weight with the largest w / (share + 1), ties to the lowest
    index. The result sums to total exactly, equals the weights at total = Σw, and never
    decreases as total grows (the method is house-monotone), so splitting a running total — paid
    so far, refunded so far — never takes back a unit and never exceeds a weight.

    Raises ValueError (a caller's bug: builders check amounts first) for a negative weight, more
    than MAX_SPLITS weights, or a total outside [0, Σ weights].
    """
    weights = list(weights_minor)
    whole = sum(weights)
    if len(weights) > MAX_SPLITS or any(w < 0 for w in weights):
        raise ValueError(f"weights are at most {MAX_SPLITS} non-negative amounts")
    if not 0 <= total_minor <= whole:
        raise ValueError("the total is outside [0, sum of weights]")
    if whole == 0:
        return tuple(0 for _ in weights)
    shares = [total_minor * w // whole for w in weights]
    for _ in range(total_minor - sum(shares)):
        best = 0
        for i in range(1, len(weights)):
            # w_i / (s_i + 1) > w_best / (s_best + 1), in integers; equal keeps the lower index
            if weights[i] * (shares[best] + 1) > weights[best] * (shares[i] + 1):
                best = i
        shares[best] += 1
    return tuple(shares)


def split_increment(
    *, before_minor: int, amount_minor: int, weights_minor: Sequence[int]
) -> tuple[int, ...]:
    """The split of `amount_minor` that takes a running total from `before_minor` to
    `before_minor + amount_minor`: allocate_cumulative(after) − allocate_cumulative(before).

    Every share is ≥ 0 and they sum to amount_minor. Raises ValueError as allocate_cumulative
    does, also for a negative amount or before.
    """
    if before_minor < 0 or amount_minor < 0:
        raise ValueError("amounts must not be negative")
    after = allocate_cumulative(before_minor + amount_minor, weights_minor=weights_minor)
    prior = allocate_cumulative(before_minor, weights_minor=weights_minor)
    return tuple(a - b for a, b in zip(after, prior, strict=True))
