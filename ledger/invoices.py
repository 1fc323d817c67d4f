"""Reading invoices and their lines."""

from sqlalchemy import select
from sqlalchemy.orm import Session

from ledger.errors import NotFound
from ledger.models import Invoice, InvoiceLine
from ledger.periods import Period


def list_invoices(
    session: Session, *, tenant_id: str | None = None, period: Period | None = None
) -> list[Invoice]:
    query = select(Invoice).order_by(Invoice.period_start.desc(), Invoice.tenant_id)
    if tenant_id is not None:
        query = query.where(Invoice.tenant_id == tenant_id)
    if period is not None:
        query = query.where(Invoice.period_start == period.start)
    return list(session.scalars(query))


def get_invoice(session: Session, invoice_id: int, tenant_id: str | None = None) -> Invoice:
    """Return an invoice; with a tenant, another tenant's invoice is reported as not found."""
    query = select(Invoice).where(Invoice.id == invoice_id)
    if tenant_id is not None:
        query = query.where(Invoice.tenant_id == tenant_id)
    invoice = session.scalar(query)
    if invoice is None:
        raise NotFound(f"invoice {invoice_id} not found")
    return invoice


def invoice_lines(session: Session, invoice_id: int) -> list[InvoiceLine]:
    query = (
        select(InvoiceLine)
        .where(InvoiceLine.invoice_id == invoice_id)
        .order_by(InvoiceLine.agent, InvoiceLine.model)
    )
    return list(session.scalars(query))
