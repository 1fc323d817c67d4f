"""Errors raised by the ledger."""


class LedgerError(Exception):
    """Base class of every error the ledger package raises."""


class LedgerConfigError(LedgerError):
    """Raised when the database URL or the price catalog is invalid."""


class NotFound(LedgerError):
    """Raised when a tenant, plan, job or invoice does not exist (or belongs to another tenant)."""


class InvalidPlan(LedgerError):
    """Raised when a plan's definition is incomplete or contradictory."""


class IdempotencyConflict(LedgerError):
    """Raised when an idempotency key a tenant already used for one agent is reused for another."""


class DuplicateName(LedgerError):
    """Raised when creating a tenant or plan whose name is already taken."""
