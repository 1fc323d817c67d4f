"""Errors raised while submitting jobs or reading their results."""


class ProducerError(Exception):
    """Base class of every error the producer package raises."""


class BrokerUnavailable(ProducerError):
    """Raised when jobs cannot be handed to the broker; unsent jobs are removed, not left queued."""

    def __init__(self, message: str, sent_job_ids: list[str]) -> None:
        super().__init__(message)
        self.sent_job_ids = sent_job_ids


class WaitTimeout(ProducerError):
    """Raised when jobs are still pending after the wait's timeout."""

    def __init__(self, pending: list[str], timeout_s: float) -> None:
        super().__init__(f"{len(pending)} jobs still pending after {timeout_s:g} s")
        self.pending = pending
