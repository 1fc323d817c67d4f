"""Pricing plans and tenants: who pays for usage, and at what rates."""

import re
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ledger.errors import DuplicateName, InvalidPlan, NotFound
from ledger.models import Plan, PlanKind, PlanRate, Tenant
from ledger.money import price_tokens
from ledger.usage import TokenKind

TENANT_ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
PLAN_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
# Limits of the plan columns: rates per million tokens and markups keep six places.
RATE_SCALE = 6
MARKUP_SCALE = 6
MAX_RATE = Decimal("1000000")
MAX_MARKUP = Decimal("1000")
PROVIDER_CURRENCY = "USD"


@dataclass(frozen=True)
class PlanTerms:
    """A plan as billing needs it: rates per million tokens, or a markup on provider cost."""

    name: str
    kind: PlanKind
    currency: str
    rates_per_mtok: dict[TokenKind, Decimal]
    markup: Decimal | None

    def charge(self, tokens: dict[TokenKind, int], provider_cost: Decimal) -> Decimal:
        """Return the unrounded charge for usage under this plan."""
        if self.kind is PlanKind.MARKUP:
            assert self.markup is not None
            return provider_cost * self.markup
        rates = dict(self.rates_per_mtok)
        for kind in (TokenKind.CACHED_INPUT, TokenKind.CACHE_WRITE):
            rates.setdefault(kind, rates[TokenKind.INPUT])
        return price_tokens(tokens, rates)


def create_plan(
    session: Session,
    name: str,
    *,
    rates_per_mtok: dict[TokenKind, Decimal] | None = None,
    markup: Decimal | None = None,
    currency: str = PROVIDER_CURRENCY,
    bill_cache_hits: bool = True,
) -> Plan:
    """Create a per_mtok plan (give rates) or a markup plan (give markup), not both.

    A per_mtok plan needs input and output rates; cached and cache-write input default
    to the input rate. A markup plan bills in the providers' currency, USD.
    """
    kind = _plan_kind(name, rates_per_mtok, markup, currency)
    plan = Plan(
        name=name,
        kind=kind.value,
        currency=currency,
        markup=markup,
        bill_cache_hits=bill_cache_hits,
    )
    session.add(plan)
    try:
        session.flush()
    except IntegrityError:
        raise DuplicateName(f"plan {name!r} already exists; choose another name") from None
    for token_kind, rate in (rates_per_mtok or {}).items():
        session.add(PlanRate(plan_id=plan.id, token_kind=token_kind.value, price_per_mtok=rate))
    return plan


def _plan_kind(
    name: str, rates: dict[TokenKind, Decimal] | None, markup: Decimal | None, currency: str
) -> PlanKind:
    if not PLAN_NAME_PATTERN.match(name):
        raise InvalidPlan(
            f"plan name {name!r} is invalid; use 1-64 letters, digits, '.', '-' or '_'"
        )
    for kind, rate in (rates or {}).items():
        _check_number(name, f"{kind.value} rate", rate, RATE_SCALE, MAX_RATE)
    if markup is not None:
        _check_number(name, "markup", markup, MARKUP_SCALE, MAX_MARKUP)
    if not re.fullmatch(r"[A-Z]{3}", currency):
        raise InvalidPlan(
            f"plan {name!r}: currency {currency!r} is not an ISO 4217 code such as USD"
        )
    if (rates is None) == (markup is None):
        raise InvalidPlan(f"plan {name!r}: give either rates per million tokens or a markup")
    if markup is not None:
        if markup <= 0:
            raise InvalidPlan(f"plan {name!r}: markup {markup} must be greater than 0, e.g. 1.25")
        if currency != PROVIDER_CURRENCY:
            raise InvalidPlan(
                f"plan {name!r}: a markup plan bills in the provider currency "
                f"{PROVIDER_CURRENCY}, not {currency}"
            )
        return PlanKind.MARKUP
    missing = [k.value for k in (TokenKind.INPUT, TokenKind.OUTPUT) if k not in (rates or {})]
    if missing:
        raise InvalidPlan(f"plan {name!r}: missing rate for {', '.join(missing)}")
    return PlanKind.PER_MTOK


def _check_number(plan: str, what: str, value: Decimal, places: int, maximum: Decimal) -> None:
    """Reject values the plan columns cannot store exactly."""
    if value >= maximum:
        raise InvalidPlan(f"plan {plan!r}: {what} {value} must be below {maximum}")
    if value != value.quantize(Decimal(1).scaleb(-places)):
        raise InvalidPlan(f"plan {plan!r}: {what} {value} has more than {places} decimal places")


def plan_terms(session: Session, plan: Plan) -> PlanTerms:
    rates = {
        TokenKind(rate.token_kind): rate.price_per_mtok
        for rate in session.scalars(select(PlanRate).where(PlanRate.plan_id == plan.id))
    }
    return PlanTerms(plan.name, PlanKind(plan.kind), plan.currency, rates, plan.markup)


def create_tenant(session: Session, tenant_id: str, plan_name: str) -> Tenant:
    if not TENANT_ID_PATTERN.match(tenant_id):
        raise InvalidPlan(
            f"tenant id {tenant_id!r} is invalid; use 1-64 lowercase letters, digits, '-' or '_'"
        )
    plan = get_plan(session, plan_name)
    tenant = Tenant(id=tenant_id, plan_id=plan.id)
    session.add(tenant)
    try:
        session.flush()
    except IntegrityError:
        raise DuplicateName(f"tenant {tenant_id!r} already exists") from None
    return tenant


def get_plan(session: Session, name: str) -> Plan:
    plan = session.scalar(select(Plan).where(Plan.name == name))
    if plan is None:
        known = ", ".join(session.scalars(select(Plan.name).order_by(Plan.name))) or "none yet"
        raise NotFound(f"unknown plan {name!r}; known plans: {known}")
    return plan


def get_tenant(session: Session, tenant_id: str) -> Tenant:
    tenant = session.get(Tenant, tenant_id)
    if tenant is None:
        raise NotFound(
            f"unknown tenant {tenant_id!r}; create it with "
            f"'agentfleet tenants create {tenant_id} --plan PLAN'"
        )
    return tenant


def list_plans(session: Session) -> list[PlanTerms]:
    return [plan_terms(session, plan) for plan in session.scalars(select(Plan).order_by(Plan.name))]


def list_tenants(session: Session) -> list[tuple[Tenant, Plan]]:
    rows = session.execute(select(Tenant, Plan).join(Plan).order_by(Tenant.id))
    return [(tenant, plan) for tenant, plan in rows.tuples()]
