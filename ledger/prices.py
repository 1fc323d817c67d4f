"""The provider price catalog: load it from TOML, store it, and price a call's usage."""

import tomllib
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ledger.errors import LedgerConfigError, LedgerError
from ledger.models import Price
from ledger.money import parse_decimal, price_tokens
from ledger.usage import TokenKind, TokenUsage


class UnknownPrice(LedgerError):
    """Raised when the catalog has no price for a model, or none in force at a time."""


@dataclass(frozen=True)
class PriceEntry:
    """One model's price per million tokens of each kind from a date on.

    ``tiers`` maps a prompt size in tokens to the rates of calls whose prompt is larger;
    kinds a tier leaves out keep the base rate.
    """

    provider: str
    model: str
    effective_from: datetime
    currency: str
    rates_per_mtok: dict[TokenKind, Decimal]
    tiers: dict[int, dict[TokenKind, Decimal]] = field(default_factory=dict)


def load_price_catalog(path: Path | None = None) -> list[PriceEntry]:
    """Read a price catalog TOML file; without a path, the catalog shipped with agentfleet."""
    if path is None:
        source = "built-in price_catalog.toml"
        text = resources.files("ledger").joinpath("price_catalog.toml").read_text(encoding="utf-8")
    else:
        source = str(path)
        text = path.read_text(encoding="utf-8")
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise LedgerConfigError(f"price catalog {source}: invalid TOML: {exc}") from exc
    return [
        _parse_entry(source, number, raw) for number, raw in enumerate(document.get("price", []), 1)
    ]


def _parse_entry(source: str, number: int, raw: dict[str, Any]) -> PriceEntry:
    where = f"price catalog {source}: price #{number}"
    try:
        day = raw["effective_from"]
        if not isinstance(day, date):
            raise ValueError(f"effective_from {day!r} is not a date such as 2025-04-14")
        rates = _rates(raw)
        for required in (TokenKind.INPUT, TokenKind.OUTPUT):
            if required not in rates:
                raise ValueError(f"missing the {required.value!r} price")
        return PriceEntry(
            provider=str(raw["provider"]),
            model=str(raw["model"]),
            effective_from=datetime.combine(day, time(), tzinfo=UTC),
            currency=str(raw.get("currency", "USD")),
            rates_per_mtok=rates,
            tiers=dict(_tier(tier) for tier in raw.get("tier", [])),
        )
    except KeyError as exc:
        raise LedgerConfigError(f"{where}: missing field {exc.args[0]!r}") from None
    except ValueError as exc:
        raise LedgerConfigError(f"{where}: {exc}") from None


def _rates(raw: dict[str, Any]) -> dict[TokenKind, Decimal]:
    return {
        kind: parse_decimal(raw[kind.value], f"{kind.value} price")
        for kind in TokenKind
        if kind.value in raw
    }


def _tier(raw: dict[str, Any]) -> tuple[int, dict[TokenKind, Decimal]]:
    threshold = raw.get("above_input_tokens")
    if not isinstance(threshold, int) or threshold <= 0:
        raise ValueError(f"tier above_input_tokens {threshold!r} must be a whole number above 0")
    rates = _rates(raw)
    if not rates:
        raise ValueError(f"tier above {threshold} input tokens gives no price")
    return threshold, rates


def sync_prices(session: Session, entries: list[PriceEntry]) -> int:
    """Insert catalog prices the database lacks; return how many rows were added.

    A stored price is never changed: an entry that contradicts one raises LedgerConfigError.
    """
    stored = {
        (row.provider, row.model, row.token_kind, row.effective_from, row.above_input_tokens): row
        for row in session.scalars(select(Price))
    }
    added = 0
    for entry in entries:
        for above, rates in [(0, entry.rates_per_mtok), *entry.tiers.items()]:
            for kind, rate in rates.items():
                key = (entry.provider, entry.model, kind.value, entry.effective_from, above)
                existing = stored.get(key)
                if existing is None:
                    session.add(_price_row(entry, kind, rate, above))
                    added += 1
                elif existing.price_per_mtok != rate or existing.currency != entry.currency:
                    raise LedgerConfigError(
                        f"price of {entry.provider}:{entry.model} {kind.value} from "
                        f"{entry.effective_from.date()} is stored as {existing.price_per_mtok} "
                        f"{existing.currency}, the catalog says {rate} {entry.currency}; a price "
                        "change needs a new entry with a later effective_from"
                    )
    return added


def _price_row(entry: PriceEntry, kind: TokenKind, rate: Decimal, above: int) -> Price:
    return Price(
        provider=entry.provider,
        model=entry.model,
        token_kind=kind.value,
        price_per_mtok=rate,
        currency=entry.currency,
        effective_from=entry.effective_from,
        above_input_tokens=above,
    )


@dataclass(frozen=True)
class CallCost:
    amount: Decimal
    currency: str


class PriceBook:
    """Prices in memory, for pricing calls at the rate in force when each was made."""

    def __init__(self, rows: list[Price]) -> None:
        self._rows: dict[tuple[str, str], list[Price]] = {}
        for row in sorted(rows, key=lambda r: r.effective_from):
            self._rows.setdefault((row.provider, row.model), []).append(row)

    @classmethod
    def from_session(cls, session: Session) -> "PriceBook":
        return cls(list(session.scalars(select(Price))))

    def has(self, provider: str, model: str) -> bool:
        return (provider, model) in self._rows

    def rates_at(
        self, provider: str, model: str, at: datetime, prompt_tokens: int = 0
    ) -> tuple[dict[TokenKind, Decimal], str]:
        """Return the rates in force at ``at`` for a call with this many prompt tokens.

        A call whose prompt is above a tier's threshold pays that tier's rates for all of
        its tokens, as long-context pricing works.
        """
        rows = self._rows.get((provider, model))
        if not rows:
            raise UnknownPrice(
                f"no price for {provider}:{model}; add it to the price catalog and run "
                "'agentfleet db upgrade'"
            )
        in_force = [row for row in rows if row.effective_from <= at]
        if not in_force:
            raise UnknownPrice(f"no price for {provider}:{model} in force at {at.isoformat()}")
        # The newest entry replaces older ones whole, tiers included.
        entry = [row for row in in_force if row.effective_from == in_force[-1].effective_from]
        tier = max(
            {r.above_input_tokens for r in entry if r.above_input_tokens < prompt_tokens} | {0}
        )
        rates: dict[TokenKind, Decimal] = {}
        for threshold in sorted({0, tier}):
            for row in entry:
                if row.above_input_tokens == threshold:
                    rates[TokenKind(row.token_kind)] = row.price_per_mtok
        return rates, entry[0].currency

    def cost(self, provider: str, model: str, usage: TokenUsage, at: datetime) -> CallCost:
        """Price a call's usage; cached and cache-write input without a price of their own
        cost the input price."""
        rates, currency = self.rates_at(provider, model, at, usage.prompt_tokens)
        for kind in (TokenKind.CACHED_INPUT, TokenKind.CACHE_WRITE):
            rates.setdefault(kind, rates[TokenKind.INPUT])
        return CallCost(price_tokens(usage.by_kind(), rates), currency)
