from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from ledger.db import make_engine, session_factory, transaction
from ledger.errors import InvalidPlan, LedgerConfigError
from ledger.migrate import upgrade
from ledger.models import PlanKind
from ledger.money import round_amount
from ledger.periods import Period
from ledger.plans import PlanTerms
from ledger.prices import PriceBook, UnknownPrice, load_price_catalog, sync_prices
from ledger.usage import TokenKind, TokenUsage

AT = datetime(2026, 6, 1, tzinfo=UTC)


def book_from(tmp_path: Path, catalog: str) -> PriceBook:
    path = tmp_path / "prices.toml"
    path.write_text(catalog, encoding="utf-8")
    engine = make_engine(f"sqlite:///{tmp_path / 'p.db'}", create=True)
    upgrade(engine)
    sessions = session_factory(engine)
    with transaction(sessions) as session:
        sync_prices(session, load_price_catalog(path))
    with sessions() as session:
        return PriceBook.from_session(session)


def test_builtin_catalog_prices_gpt_4o_mini() -> None:
    entries = {(e.provider, e.model): e for e in load_price_catalog()}
    mini = entries[("openai", "gpt-4o-mini")]
    assert mini.rates_per_mtok == {
        TokenKind.INPUT: Decimal("0.15"),
        TokenKind.CACHED_INPUT: Decimal("0.075"),
        TokenKind.OUTPUT: Decimal("0.60"),
    }
    assert mini.currency == "USD"


def test_call_cost_is_exact(tmp_path: Path) -> None:
    book = book_from(
        tmp_path,
        """
[[price]]
provider = "openai"
model = "gpt-4o-mini"
effective_from = 2024-07-18
input = "0.15"
cached_input = "0.075"
output = "0.60"
""",
    )
    usage = TokenUsage(
        input_tokens=176, cached_input_tokens=1024, output_tokens=300, reasoning_tokens=120
    )
    cost = book.cost("openai", "gpt-4o-mini", usage, AT)
    # 176 x 0.15 + 1024 x 0.075 + 300 x 0.60 = 26.4 + 76.8 + 180 = 283.2 USD per million calls
    assert cost.amount == Decimal("0.0002832")
    assert cost.currency == "USD"


def test_price_in_force_at_call_time(tmp_path: Path) -> None:
    book = book_from(
        tmp_path,
        """
[[price]]
provider = "openai"
model = "m"
effective_from = 2025-01-01
input = "1.00"
output = "2.00"

[[price]]
provider = "openai"
model = "m"
effective_from = 2026-03-01
input = "0.50"
output = "2.00"
""",
    )
    usage = TokenUsage(input_tokens=1_000_000)
    assert book.cost("openai", "m", usage, datetime(2026, 2, 28, 23, 59, tzinfo=UTC)).amount == 1
    assert book.cost("openai", "m", usage, datetime(2026, 3, 1, tzinfo=UTC)).amount == Decimal(
        "0.5"
    )
    with pytest.raises(UnknownPrice, match="no price for openai:m in force at 2024"):
        book.cost("openai", "m", usage, datetime(2024, 1, 1, tzinfo=UTC))
    with pytest.raises(
        UnknownPrice, match="no price for openai:other; add it to the price catalog"
    ):
        book.cost("openai", "other", usage, AT)


def test_stored_price_is_never_changed(tmp_path: Path) -> None:
    catalog = '[[price]]\nprovider = "p"\nmodel = "m"\neffective_from = 2025-01-01\ninput = "1"\noutput = "2"\n'
    path = tmp_path / "prices.toml"
    path.write_text(catalog, encoding="utf-8")
    engine = make_engine(f"sqlite:///{tmp_path / 'p.db'}", create=True)
    upgrade(engine)
    sessions = session_factory(engine)
    with transaction(sessions) as session:
        assert sync_prices(session, load_price_catalog(path)) == 2
    with transaction(sessions) as session:
        assert sync_prices(session, load_price_catalog(path)) == 0
    path.write_text(catalog.replace('input = "1"', 'input = "1.5"'), encoding="utf-8")
    with (
        pytest.raises(
            LedgerConfigError, match="a price change needs a new entry with a later effective_from"
        ),
        transaction(sessions) as session,
    ):
        sync_prices(session, load_price_catalog(path))


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            'provider = "p"\nmodel = "m"\neffective_from = 2025-01-01\ninput = "1"\n',
            "missing the 'output' price",
        ),
        (
            'provider = "p"\nmodel = "m"\neffective_from = "soon"\ninput = "1"\noutput = "1"\n',
            "is not a date",
        ),
        (
            'provider = "p"\neffective_from = 2025-01-01\ninput = "1"\noutput = "1"\n',
            "missing field 'model'",
        ),
        (
            'provider = "p"\nmodel = "m"\neffective_from = 2025-01-01\ninput = "-1"\noutput = "1"\n',
            "must be a finite number",
        ),
    ],
)
def test_invalid_price_entries(tmp_path: Path, body: str, message: str) -> None:
    path = tmp_path / "prices.toml"
    path.write_text("[[price]]\n" + body, encoding="utf-8")
    with pytest.raises(LedgerConfigError, match=message):
        load_price_catalog(path)


def test_per_token_plan_charge() -> None:
    plan = PlanTerms(
        "p",
        PlanKind.PER_MTOK,
        "EUR",
        {TokenKind.INPUT: Decimal("0.30"), TokenKind.OUTPUT: Decimal("1.20")},
        None,
    )
    tokens = {
        TokenKind.INPUT: 2_000_000,
        TokenKind.CACHED_INPUT: 500_000,
        TokenKind.CACHE_WRITE: 0,
        TokenKind.OUTPUT: 250_000,
    }
    # 2.0 x 0.30 + 0.5 x 0.30 (cached input falls back to the input rate) + 0.25 x 1.20
    assert plan.charge(tokens, Decimal("99")) == Decimal("1.05")


def test_markup_plan_charge() -> None:
    plan = PlanTerms("m", PlanKind.MARKUP, "USD", {}, Decimal("1.25"))
    assert plan.charge({}, Decimal("0.036")) == Decimal("0.045")


def test_rounding_is_half_up_once() -> None:
    assert round_amount(Decimal("0.125")) == Decimal("0.13")
    assert round_amount(Decimal("0.124999")) == Decimal("0.12")
    assert round_amount(Decimal("2.675")) == Decimal("2.68")


def test_periods_are_utc_months() -> None:
    period = Period.parse("2026-12")
    assert (period.start, period.end) == (date(2026, 12, 1), date(2027, 1, 1))
    assert str(period.previous()) == "2026-11"
    assert Period.month_of(datetime(2027, 1, 1, 0, 30, tzinfo=UTC)) == Period.parse("2027-01")
    with pytest.raises(ValueError, match="invalid period '2026-13'; write a month as YYYY-MM"):
        Period.parse("2026-13")


def test_plan_validation(tmp_path: Path) -> None:
    from ledger.plans import create_plan

    engine = make_engine(f"sqlite:///{tmp_path / 'p.db'}", create=True)
    upgrade(engine)
    sessions = session_factory(engine)
    cases = [
        ({"markup": Decimal("0")}, "markup 0 must be greater than 0"),
        ({"markup": Decimal("1.2"), "currency": "EUR"}, "bills in the provider currency USD"),
        ({"rates_per_mtok": {TokenKind.INPUT: Decimal(1)}}, "missing rate for output"),
        ({}, "give either rates per million tokens or a markup"),
        ({"markup": Decimal("1.2"), "currency": "usd"}, "is not an ISO 4217 code"),
    ]
    for terms, message in cases:
        with pytest.raises(InvalidPlan, match=message), transaction(sessions) as session:
            create_plan(session, "p", **terms)  # type: ignore[arg-type]


def test_long_context_tier_prices_whole_call(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'p.db'}", create=True)
    upgrade(engine)
    sessions = session_factory(engine)
    with transaction(sessions) as session:
        sync_prices(session, load_price_catalog())
    with sessions() as session:
        book = PriceBook.from_session(session)
    engine.dispose()
    at_limit = TokenUsage(input_tokens=150_000, cached_input_tokens=50_000, output_tokens=1_000)
    above = TokenUsage(input_tokens=150_001, cached_input_tokens=50_000, output_tokens=1_000)
    # 200,000 prompt tokens is not above the tier: 150,000 x 3.00 + 50,000 x 0.30 + 1,000 x 15.00
    assert book.cost("anthropic", "claude-sonnet-4-5", at_limit, AT).amount == Decimal("0.48")
    # One token more: every token at the tier's rates, 6.00, 0.60 and 22.50
    assert book.cost("anthropic", "claude-sonnet-4-5", above, AT).amount == Decimal("0.952506")


def test_newer_entry_replaces_older_whole(tmp_path: Path) -> None:
    book = book_from(
        tmp_path,
        """
[[price]]
provider = "p"
model = "m"
effective_from = 2025-01-01
input = "1"
cache_write = "9"
output = "2"

[[price]]
provider = "p"
model = "m"
effective_from = 2026-01-01
input = "0.5"
output = "2"
""",
    )
    rates, currency = book.rates_at("p", "m", AT)
    assert rates == {TokenKind.INPUT: Decimal("0.5"), TokenKind.OUTPUT: Decimal(2)}
    assert currency == "USD"
