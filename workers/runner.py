"""The life of one agent job inside a worker: claim, call the provider, record, complete."""

import logging
import random
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from agents import AgentError, AgentSpec, InvalidOutput, parse_output, render_messages
from agents.output import response_format
from ledger.calls import (
    CallRecord,
    ClaimedJob,
    claim_job,
    close_attempt,
    complete_job,
    fail_job,
    open_attempt,
    record_usage,
)
from ledger.db import transaction
from ledger.models import AttemptStatus
from ledger.prices import UnknownPrice
from ledger.types import utcnow
from workers.providers.errors import ProviderError
from workers.providers.openai_chat import ChatReply, ChatRequest
from workers.retry import backoff_delay_s
from workers.runtime import WorkerRuntime

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AttemptFailure:
    """Why one attempt produced no result, and how long the provider asked us to wait."""

    message: str
    retryable: bool
    retry_after_s: float | None = None


class JobRunner:
    """Runs agent jobs with the resources of one worker process."""

    def __init__(self, runtime: WorkerRuntime, rng: random.Random | None = None) -> None:
        self.runtime = runtime
        self.rng = rng or random.Random()

    def run(self, job_id: str, agent_name: str) -> str:
        """Run a job to a final state; return that state, or 'skipped' for a finished job."""
        agent = self.runtime.agents[agent_name]
        with transaction(self.runtime.sessions) as session:
            job = claim_job(session, job_id, agent.time_limit_s)
        if job is None:
            log.info("job %s already finished or unknown; delivery skipped", job_id)
            return "skipped"

        try:
            request = self._request(agent, job)
            target = self.runtime.target(agent.model)
            self.runtime.prices.rates_at(target.provider, target.model, utcnow())
        except (AgentError, UnknownPrice) as exc:
            # Nothing was sent to the provider, so there is no usage to record.
            return self._give_up(job, AttemptFailure(str(exc), retryable=False), attempts=0)

        failure = None
        attempts = 0
        for attempt in range(1, self.runtime.settings.max_attempts + 1):
            if attempt > 1 and not self._wait_before_retry(job, attempt - 1, failure):
                break
            attempts = attempt
            failure = self._attempt(agent, job, request, attempt)
            if failure is None:
                return "succeeded"
            if not failure.retryable:
                break
        return self._give_up(job, failure, attempts)

    def _request(self, agent: AgentSpec, job: ClaimedJob) -> ChatRequest:
        return ChatRequest(
            model=self.runtime.target(agent.model).model,
            messages=render_messages(agent, job.input),
            max_tokens=agent.max_tokens,
            temperature=agent.temperature,
            response_format=response_format(agent),
        )

    def _attempt(
        self, agent: AgentSpec, job: ClaimedJob, request: ChatRequest, number: int
    ) -> AttemptFailure | None:
        """Make one provider call and record it; return None when the job succeeded."""
        target = self.runtime.target(agent.model)
        remaining_s = _remaining_s(job)
        if remaining_s <= 0:
            return AttemptFailure(f"deadline of {agent.time_limit_s:g} s passed", retryable=False)

        with transaction(self.runtime.sessions) as session:
            attempt_id = open_attempt(session, job.id, target.provider, target.model)
        started_at = utcnow()
        timeout_s = min(self.runtime.settings.providers[target.provider].timeout_s, remaining_s)
        try:
            reply = self.runtime.provider_client(target.provider).complete(request, timeout_s)
        except ProviderError as exc:
            self._record_failed_call(attempt_id, exc)
            log.info(
                "job %s tenant %s agent %s attempt %d failed: %s",
                job.id,
                job.tenant_id,
                job.agent,
                number,
                exc,
            )
            return AttemptFailure(str(exc), exc.retryable, exc.retry_after_s)

        call = self._call_record(attempt_id, target.provider, target.model, reply, started_at)
        return self._finish_call(agent, job, call, reply, number)

    def _call_record(
        self, attempt_id: str, provider: str, model: str, reply: ChatReply, at: datetime
    ) -> CallRecord:
        cost = self.runtime.prices.cost(provider, model, reply.usage, at)
        return CallRecord(attempt_id, provider, model, reply.usage, cost, at)

    def _finish_call(
        self, agent: AgentSpec, job: ClaimedJob, call: CallRecord, reply: ChatReply, number: int
    ) -> AttemptFailure | None:
        try:
            result: Any = parse_output(agent, reply.content)
        except InvalidOutput as exc:
            with transaction(self.runtime.sessions) as session:
                record_usage(session, job, call, billable=False)
                close_attempt(
                    session, call.attempt_id, AttemptStatus.FAILED, http_status=200, error=str(exc)
                )
            log.info(
                "job %s tenant %s agent %s attempt %d: %s",
                job.id,
                job.tenant_id,
                job.agent,
                number,
                exc,
            )
            return AttemptFailure(str(exc), retryable=True)

        with transaction(self.runtime.sessions) as session:
            completed = complete_job(session, job, call, result)
        if not completed:
            log.warning(
                "job %s finished elsewhere first; attempt %d recorded as cost only", job.id, number
            )
        log.info(
            "job %s tenant %s agent %s succeeded on attempt %d (%d prompt, %d output tokens)",
            job.id,
            job.tenant_id,
            job.agent,
            number,
            call.usage.prompt_tokens,
            call.usage.output_tokens,
        )
        return None

    def _record_failed_call(self, attempt_id: str, exc: ProviderError) -> None:
        with transaction(self.runtime.sessions) as session:
            close_attempt(
                session, attempt_id, AttemptStatus.FAILED, http_status=exc.status, error=str(exc)
            )

    def _wait_before_retry(
        self, job: ClaimedJob, retry: int, failure: AttemptFailure | None
    ) -> bool:
        """Sleep before a retry; False when the wait would pass the job's deadline."""
        settings = self.runtime.settings
        delay_s = backoff_delay_s(retry, settings.backoff_base_s, settings.backoff_cap_s, self.rng)
        if failure is not None and failure.retry_after_s is not None:
            delay_s = max(delay_s, failure.retry_after_s)
        if delay_s >= _remaining_s(job):
            return False
        time.sleep(delay_s)
        return True

    def _give_up(self, job: ClaimedJob, failure: AttemptFailure | None, attempts: int) -> str:
        error = failure.message if failure else "no attempt was made"
        if attempts:
            error += f" (gave up after {attempts} attempt{'s' if attempts != 1 else ''})"
        with transaction(self.runtime.sessions) as session:
            failed = fail_job(session, job.id, error)
        log.warning("job %s tenant %s agent %s failed: %s", job.id, job.tenant_id, job.agent, error)
        return "failed" if failed else "skipped"


def _remaining_s(job: ClaimedJob) -> float:
    return (job.deadline_at - utcnow()).total_seconds()
