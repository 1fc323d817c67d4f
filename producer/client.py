"""The Python API for submitting agent jobs and reading their results."""

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from agentfleet.fleet import load_agents
from agentfleet.settings import Settings, get_settings
from agents import AgentCatalog, validate_input
from ledger import jobs as job_store
from ledger.calls import attempts_of
from ledger.db import make_engine, session_factory, transaction
from ledger.errors import NotFound
from ledger.models import TERMINAL_STATUSES, Job, JobStatus
from ledger.plans import get_tenant
from producer.errors import BrokerUnavailable, WaitTimeout
from producer.sender import TaskSender

SUBMIT_CHUNK = 500
PENDING_STATUSES = (JobStatus.QUEUED.value, JobStatus.RUNNING.value)


@dataclass(frozen=True)
class JobRequest:
    """One job to submit: the agent's input and an optional idempotency key."""

    input: dict[str, Any]
    idempotency_key: str | None = None
    priority: int = 0


@dataclass(frozen=True)
class JobView:
    """A job's state, result and timing, as returned to its submitter."""

    id: str
    tenant: str
    agent: str
    status: str
    attempts: int
    result: Any
    error: str | None
    idempotency_key: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    # Times the recovery task sent the job again after its message or worker was lost.
    recoveries: int = 0

    @classmethod
    def of(cls, job: Job) -> "JobView":
        return cls(
            job.id,
            job.tenant_id,
            job.agent,
            job.status,
            job.attempts,
            job.result,
            job.error,
            job.idempotency_key,
            job.created_at,
            job.started_at,
            job.finished_at,
            job.recoveries,
        )

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL_STATUSES

    def to_dict(self) -> dict[str, Any]:
        data = self.__dict__.copy()
        for name in ("created_at", "started_at", "finished_at"):
            data[name] = data[name].isoformat() if data[name] else None
        return data


@dataclass(frozen=True)
class Submitted:
    """A submitted job; ``created`` is False when its idempotency key returned an earlier job."""

    job: JobView
    created: bool


ProgressCallback = Callable[[int], None]


class JobClient:
    """Submits jobs (validated against their agent, stored, then sent) and reads them back."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        sessions: sessionmaker[Session] | None = None,
        catalog: AgentCatalog | None = None,
    ) -> None:
        self.settings = settings or get_settings()
        self.catalog = catalog or load_agents(self.settings)
        self._own_engine = None
        if sessions is None:
            self._own_engine = make_engine(self.settings.database_url)
            sessions = session_factory(self._own_engine)
        self.sessions = sessions
        self._sender: TaskSender | None = None

    @property
    def sender(self) -> TaskSender:
        if self._sender is None:
            self._sender = TaskSender(self.settings, self.catalog)
        return self._sender

    def submit(
        self, tenant: str, agent: str, job_input: dict[str, Any], idempotency_key: str | None = None
    ) -> JobView:
        """Submit one job; the same tenant and idempotency key return the first job again."""
        return self.submit_many(tenant, agent, [JobRequest(job_input, idempotency_key)])[0].job

    def submit_many(
        self,
        tenant: str,
        agent: str,
        requests: Sequence[JobRequest],
        on_progress: ProgressCallback | None = None,
    ) -> list[Submitted]:
        """Validate every request, then store and send them in chunks.

        Nothing is stored unless all inputs are valid. If the broker fails, the jobs it did
        not receive are deleted and BrokerUnavailable names the ones it did.
        """
        spec = self.catalog[agent]
        for request in requests:
            validate_input(spec, request.input)
        self.check_tenant(tenant)
        with self.sessions() as session:
            job_store.check_key_conflicts(
                session,
                [job_store.NewJob(tenant, agent, r.input, r.idempotency_key) for r in requests],
            )

        submitted: list[Submitted] = []
        for start in range(0, len(requests), SUBMIT_CHUNK):
            chunk = requests[start : start + SUBMIT_CHUNK]
            sent_before = [s.job.id for s in submitted if s.created]
            submitted.extend(self._submit_chunk(tenant, agent, chunk, sent_before))
            if on_progress:
                on_progress(len(chunk))
        return submitted

    def _submit_chunk(
        self, tenant: str, agent: str, chunk: Sequence[JobRequest], sent_before: list[str]
    ) -> list[Submitted]:
        new_jobs = [
            job_store.NewJob(tenant, agent, r.input, r.idempotency_key, r.priority) for r in chunk
        ]
        with transaction(self.sessions) as session:
            submitted = job_store.insert_jobs(session, new_jobs)
        to_send = [(s.job.id, agent) for s in submitted if s.created]
        try:
            self.sender.send(to_send)
        except BrokerUnavailable as exc:
            unsent = [job_id for job_id, _ in to_send if job_id not in set(exc.sent_job_ids)]
            with transaction(self.sessions) as session:
                job_store.delete_unsent_jobs(session, unsent)
            raise BrokerUnavailable(
                f"{exc}; {len(sent_before) + len(exc.sent_job_ids)} jobs were sent before it "
                "failed, the rest were not stored",
                sent_before + exc.sent_job_ids,
            ) from exc
        return [Submitted(JobView.of(s.job), s.created) for s in submitted]

    def cancel(self, job_ids: Sequence[str], tenant: str | None = None) -> list[JobView]:
        """Cancel queued or running jobs; return every given job in its state afterwards.

        Raises NotFound for an unknown id, or for another tenant's job when ``tenant`` is given.
        """
        views = [self.get(job_id, tenant) for job_id in job_ids]
        with transaction(self.sessions) as session:
            job_store.cancel_jobs(session, [view.id for view in views], tenant)
        return [self.get(view.id, tenant) for view in views]

    def attempts(self, job_id: str, tenant: str | None = None) -> list[dict[str, Any]]:
        """Return the job's provider attempts in order: target, outcome and HTTP status."""
        with self.sessions() as session:
            job_store.get_job(session, job_id, tenant)
            return [
                {
                    "number": a.number,
                    "target": f"{a.provider}:{a.model}",
                    "status": a.status,
                    "http_status": a.http_status,
                    "error": a.error,
                    "started_at": a.started_at.isoformat(),
                    "finished_at": a.finished_at.isoformat() if a.finished_at else None,
                }
                for a in attempts_of(session, job_id)
            ]

    def check_tenant(self, tenant: str) -> None:
        """Raise NotFound, with the command that creates it, for an unknown tenant."""
        with self.sessions() as session:
            get_tenant(session, tenant)

    def get(self, job_id: str, tenant: str | None = None) -> JobView:
        with self.sessions() as session:
            return JobView.of(job_store.get_job(session, job_id, tenant))

    def list_jobs(
        self,
        *,
        tenant: str | None = None,
        agent: str | None = None,
        statuses: Sequence[str] = (),
        limit: int | None = 100,
    ) -> list[JobView]:
        with self.sessions() as session:
            jobs = job_store.list_jobs(
                session, tenant_id=tenant, agent=agent, statuses=statuses, limit=limit
            )
            return [JobView.of(job) for job in jobs]

    def pending_ids(self, tenant: str) -> list[str]:
        self.check_tenant(tenant)
        with self.sessions() as session:
            query = select(Job.id).where(Job.tenant_id == tenant, Job.status.in_(PENDING_STATUSES))
            return list(session.scalars(query))

    def wait(
        self,
        job_ids: Sequence[str],
        timeout_s: float | None = None,
        poll_s: float = 0.5,
        on_progress: ProgressCallback | None = None,
    ) -> list[JobView]:
        """Poll until every job is final; return them in the order of ``job_ids``.

        Raises NotFound for an unknown id and WaitTimeout when the timeout passes first.
        """
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        done: dict[str, JobView] = {}
        self._check_known(job_ids)
        while True:
            pending = [job_id for job_id in job_ids if job_id not in done]
            newly_done = self._finished(pending)
            done.update(newly_done)
            if on_progress and newly_done:
                on_progress(len(newly_done))
            if len(done) == len(set(job_ids)):
                return [done[job_id] for job_id in job_ids]
            if deadline is not None and time.monotonic() >= deadline:
                raise WaitTimeout([j for j in job_ids if j not in done], timeout_s or 0)
            time.sleep(poll_s)

    def _check_known(self, job_ids: Sequence[str]) -> None:
        with self.sessions() as session:
            known = {job.id for job in job_store.get_jobs(session, list(set(job_ids)))}
        missing = [job_id for job_id in job_ids if job_id not in known]
        if missing:
            more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
            raise NotFound(f"job {missing[0]!r} not found{more}")

    def _finished(self, job_ids: Sequence[str]) -> dict[str, JobView]:
        with self.sessions() as session:
            jobs = job_store.get_jobs(session, list(job_ids))
        return {job.id: JobView.of(job) for job in jobs if job.status in TERMINAL_STATUSES}

    def close(self) -> None:
        """Release the broker connection, and the database engine if this client made it."""
        if self._sender is not None:
            self._sender.close()
            self._sender = None
        if self._own_engine is not None:
            self._own_engine.dispose()
