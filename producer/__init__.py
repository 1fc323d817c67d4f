"""Job submission and results: the Python API and the command line."""

from producer.client import JobClient, JobRequest, JobView, Submitted
from producer.errors import BrokerUnavailable, ProducerError, WaitTimeout

__all__ = [
    "BrokerUnavailable",
    "JobClient",
    "JobRequest",
    "JobView",
    "ProducerError",
    "Submitted",
    "WaitTimeout",
]
