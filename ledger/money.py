"""Decimal arithmetic for money: parsing, per-million-token pricing and rounding."""

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from ledger.usage import TokenKind

MILLION = Decimal(1_000_000)
CENT = Decimal("0.01")


def parse_decimal(value: object, what: str, *, positive: bool = False) -> Decimal:
    """Parse a decimal given as a string or a number; floats go through their shortest repr.

    The number must be zero or more, or with ``positive`` greater than zero.
    """
    text = repr(value) if isinstance(value, float) else str(value)
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"{what}: {value!r} is not a decimal number") from None
    if positive and not (number.is_finite() and number > 0):
        raise ValueError(f"{what}: {value!r} must be a number greater than 0")
    if not number.is_finite() or number < 0:
        raise ValueError(f"{what}: {value!r} must be a finite number of zero or more")
    return number


def price_tokens(tokens: dict[TokenKind, int], rates_per_mtok: dict[TokenKind, Decimal]) -> Decimal:
    """Return the exact price of token counts at rates per million tokens, unrounded."""
    return sum(
        (
            Decimal(count) * rates_per_mtok[kind] / MILLION
            for kind, count in tokens.items()
            if count
        ),
        Decimal(0),
    )


def round_amount(amount: Decimal) -> Decimal:
    """Round an amount once, to the cent, halves away from zero."""
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)
