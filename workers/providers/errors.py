"""Errors of provider calls, translated from httpx and provider responses at the boundary."""

from ledger.usage import TokenUsage


class ProviderError(Exception):
    """Base class: a provider call failed. ``retryable`` tells whether trying again may help.

    ``usage`` is what the provider reported before the call failed (a stream cut after
    its usage began), else None.
    """

    retryable = False

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        retry_after_s: float | None = None,
        usage: TokenUsage | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after_s = retry_after_s
        self.usage = usage


class ProviderUnavailable(ProviderError):
    """Raised for failures that may pass: 408, 409, 429, 5xx, 529, connection errors,
    timeouts, malformed response bodies and streams cut short."""

    retryable = True


class ProviderRejected(ProviderError):
    """Raised when the provider rejects the request itself (other 4xx); retrying cannot help."""
