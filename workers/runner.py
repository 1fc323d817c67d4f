"""The life of one agent job inside a worker: claim, call providers, record, complete.

A job tries its model alias's targets in order. Each target gets up to
``max_attempts`` attempts, spread over retries with backoff; when they are used up on
retryable errors, the next target is tried. A provider's refusal of the request itself
(other 4xx) fails the job at once. Attempts are counted in the ledger, so a job that
was re-enqueued to wait out a long delay resumes where it stopped.
"""

import logging
import random
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from functools import cached_property
from typing import Any, TypeVar

from sqlalchemy.orm import Session

from agentfleet.fleet import Target
from agents import AgentError, AgentSpec, InvalidOutput, parse_output, render_messages
from ledger.batches import AttemptRequest, ClaimRequest, Completion
from ledger.calls import (
    CallRecord,
    attempts_of,
    close_attempt,
    fail_job,
    record_usage,
)
from ledger.claims import ClaimedJob, Skip, release_for_requeue
from ledger.models import Attempt, AttemptStatus
from ledger.prices import CallCost, UnknownPrice
from ledger.types import utcnow
from ledger.usage import TokenUsage
from workers.ledger_writes import CLAIM, COMPLETE, OPEN_ATTEMPT, LedgerWriter
from workers.providers.base import ChatReply, ChatRequest
from workers.providers.errors import ProviderError
from workers.retry import backoff_delay_s
from workers.runtime import WorkerRuntime

log = logging.getLogger(__name__)

T = TypeVar("T")


class RequeueJob(Exception):
    """Raised when a job must wait longer than a worker slot should be held; the task
    sends it back to its queue with this countdown."""

    def __init__(self, countdown_s: float, reason: str) -> None:
        super().__init__(f"re-enqueued for {countdown_s:.1f} s: {reason}")
        self.countdown_s = countdown_s


class LedgerDelayed(Exception):
    """Raised when writing to an unreachable ledger used up a job's deadline before its
    call was sent. The outage is not the job's fault, so the job is not failed: it stays
    running, and the recovery task queues it again with a new deadline."""


@dataclass(frozen=True)
class AttemptFailure:
    """Failure of one attempt: its message, whether a retry may help, and the provider's
    requested wait."""

    message: str
    retryable: bool
    retry_after_s: float | None = None
    # False when the attempt ended before any call or cache look-up was made.
    called: bool = True


@dataclass
class JobContext:
    agent: AgentSpec
    job: ClaimedJob
    messages: list[dict[str, str]]
    used: Counter[Target]

    @property
    def attempts(self) -> int:
        return sum(self.used.values())


class JobRunner:
    """Runs agent jobs with the resources of one worker process."""

    def __init__(
        self,
        runtime: WorkerRuntime,
        rng: random.Random | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.runtime = runtime
        self.rng = rng or random.Random()
        self.sleep = sleep

    @cached_property
    def ledger(self) -> LedgerWriter:
        runtime = self.runtime
        return LedgerWriter(
            runtime.sessions, runtime.commit_group, runtime.settings.ledger_retry_s, self.sleep
        )

    def run(self, job_id: str, agent_name: str) -> str:
        """Run a job to a final state and return it, or 'skipped' for a finished job.

        Raises RequeueJob when the next attempt must wait longer than ``requeue_after_s``.
        """
        agent = self.runtime.agents[agent_name]
        job, previous = self._claim(job_id, agent)
        if isinstance(job, Skip):
            _log_skipped(job_id, job)
            return "skipped"
        max_deliveries = self.runtime.settings.max_deliveries
        if job.deliveries > max_deliveries:
            # Every earlier delivery ended without a result: its worker died mid-job.
            return self._give_up(
                JobContext(agent, job, [], Counter(Target(a.provider, a.model) for a in previous)),
                f"the worker died during each of {max_deliveries} deliveries of this job",
            )

        targets = self.runtime.targets(agent.model)
        try:
            messages = self._prepare(agent, job, targets)
        except (AgentError, UnknownPrice) as exc:
            # Nothing was sent to a provider, so there is no usage to record.
            return self._give_up(JobContext(agent, job, [], Counter()), str(exc))
        used = Counter(Target(a.provider, a.model) for a in previous)
        try:
            return self._run_targets(JobContext(agent, job, messages, used), targets)
        except LedgerDelayed as exc:
            log.warning("job %s agent %s: %s", job_id, agent_name, exc)
            return "left for recovery"

    def _claim(self, job_id: str, agent: AgentSpec) -> tuple[ClaimedJob | Skip, list[Attempt]]:
        """Claim the job, retrying while the ledger is unreachable: no call was made yet,
        so an outage only delays the job. Return it with the attempts of earlier
        deliveries."""
        request = ClaimRequest(job_id, agent.time_limit_s, str(uuid.uuid4()))
        job = self.ledger.write_batched(job_id, CLAIM, request)
        if not isinstance(job, ClaimedJob) or job.attempts == 0:
            return job, []
        return job, self._write_retrying(job_id, lambda session: attempts_of(session, job_id))

    def _prepare(
        self, agent: AgentSpec, job: ClaimedJob, targets: list[Target]
    ) -> list[dict[str, str]]:
        """Render the prompt and check every target has a price, before any call is made."""
        messages = render_messages(agent, job.input)
        for target in targets:
            self.runtime.prices.rates_at(target.provider, target.model, utcnow())
        return messages

    def _run_targets(self, ctx: JobContext, targets: list[Target]) -> str:
        budget = self.runtime.settings.max_attempts
        failure: AttemptFailure | None = None
        for target in targets:
            retries = 0
            while ctx.used[target] < budget:
                if (
                    retries
                    and failure is not None
                    and not self._wait_before_retry(ctx, retries, failure)
                ):
                    return self._give_up(ctx, failure.message)
                failure = self._attempt(ctx, target)
                if failure is None:
                    return "succeeded"
                ctx.used[target] += failure.called
                retries += 1
                if not failure.retryable:
                    return self._give_up(ctx, failure.message)
            if target is not targets[-1]:
                log.info(
                    "job %s agent %s: target %s used up its %d attempts; falling back",
                    ctx.job.id,
                    ctx.job.agent,
                    target,
                    budget,
                )
        return self._give_up(
            ctx, failure.message if failure else "every target used up its attempts"
        )

    def _attempt(self, ctx: JobContext, target: Target) -> AttemptFailure | None:
        """Make one provider call and record it; return None when the job succeeded."""
        request = self._request(ctx, target)
        if ctx.agent.cacheable and (
            cached := self.runtime.cache.get(ctx.job.tenant_id, target, request)
        ):
            return self._cache_hit(ctx, target, cached)
        if _remaining_s(ctx.job) <= 0:
            return AttemptFailure(
                f"deadline of {ctx.agent.time_limit_s:g} s passed", retryable=False, called=False
            )
        wait_s = self._wait_for_rate_limit(ctx, target)
        if wait_s:
            return AttemptFailure(
                f"the rate limit of {target} asks for a wait of {wait_s:.1f} s, past the job's "
                f"deadline of {ctx.agent.time_limit_s:g} s",
                retryable=False,
                called=False,
            )

        return self._call(ctx, target, request)

    def _call(self, ctx: JobContext, target: Target, request: ChatRequest) -> AttemptFailure | None:
        attempt_id = self._open_attempt(ctx, target)
        remaining_s = _remaining_s(ctx.job)
        if remaining_s <= 0:
            # Only a slow or unreachable ledger gets here: every wait before stops short of
            # the deadline.
            error = f"deadline of {ctx.agent.time_limit_s:g} s passed before the call was sent"
            self._close_failed(ctx, attempt_id, error)
            raise LedgerDelayed(
                f"{error}, while the ledger was slow or unreachable; the recovery task will "
                "queue it again"
            )
        started_at = utcnow()
        provider = self.runtime.settings.providers[target.provider]
        try:
            reply = self.runtime.provider_client(target.provider).complete(
                replace(request, request_id=attempt_id), min(provider.timeout_s, remaining_s)
            )
        except ProviderError as exc:
            return self._failed_call(ctx, target, attempt_id, started_at, exc)
        except Exception as exc:
            self._close_failed(ctx, attempt_id, f"unexpected error: {exc!r}")
            raise
        self.runtime.crash_point.answer_received(ctx.job.id)
        call = self._call_record(attempt_id, target, reply.usage, started_at)
        failure = self._finish_call(ctx, call, reply)
        if failure is None and ctx.agent.cacheable:
            self.runtime.cache.put(ctx.job.tenant_id, target, request, reply, ctx.agent.cache_ttl_s)
        return failure

    def _cache_hit(
        self, ctx: JobContext, target: Target, reply: ChatReply
    ) -> AttemptFailure | None:
        """Complete the job from a cached reply. No provider call is made, so there is no
        provider cost, but the tokens stay on the record for plans that bill cache hits."""
        attempt_id = self._open_attempt(ctx, target)
        now = utcnow()
        _, currency = self.runtime.prices.rates_at(target.provider, target.model, now)
        call = CallRecord(
            attempt_id,
            target.provider,
            target.model,
            reply.usage,
            CallCost(Decimal(0), currency),
            now,
            cache_hit=True,
        )
        log.info("job %s agent %s served from the response cache", ctx.job.id, ctx.job.agent)
        return self._finish_call(ctx, call, reply)

    def _close_failed(self, ctx: JobContext, attempt_id: str, error: str) -> None:
        """Close an attempt as failed when its call was never sent or raised an unexpected
        error, so no attempt stays open."""
        self._write(
            ctx,
            lambda session: close_attempt(session, attempt_id, AttemptStatus.FAILED, error=error),
        )

    def _open_attempt(self, ctx: JobContext, target: Target) -> str:
        request = AttemptRequest(ctx.job.id, target.provider, target.model, str(uuid.uuid4()))
        return self.ledger.write_batched(ctx.job.id, OPEN_ATTEMPT, request)

    def _request(self, ctx: JobContext, target: Target) -> ChatRequest:
        agent = ctx.agent
        return ChatRequest(
            model=target.model,
            messages=ctx.messages,
            max_tokens=agent.max_tokens,
            temperature=agent.temperature,
            json_schema=agent.output.json_schema,
            schema_name=agent.name.replace("-", "_"),
            stream=self.runtime.settings.providers[target.provider].stream,
            job_id=ctx.job.id,
        )

    def _call_record(
        self,
        attempt_id: str,
        target: Target,
        usage: TokenUsage,
        at: datetime,
        partial: bool = False,
    ) -> CallRecord:
        cost = self.runtime.prices.cost(target.provider, target.model, usage, at)
        return CallRecord(
            attempt_id, target.provider, target.model, usage, cost, at, partial=partial
        )

    def _failed_call(
        self, ctx: JobContext, target: Target, attempt_id: str, at: datetime, exc: ProviderError
    ) -> AttemptFailure:
        partial = None
        if exc.usage is not None:
            partial = self._call_record(attempt_id, target, exc.usage, at, partial=True)

        def record(session: Session) -> None:
            if partial is not None:
                record_usage(session, ctx.job, partial, billable=False)
            close_attempt(
                session, attempt_id, AttemptStatus.FAILED, http_status=exc.status, error=str(exc)
            )

        self._write(ctx, record)
        if exc.status == 429 and exc.retry_after_s:
            self.runtime.limiter.pause(target, exc.retry_after_s)
        log.info(
            "job %s tenant %s agent %s attempt %d on %s failed: %s",
            ctx.job.id,
            ctx.job.tenant_id,
            ctx.job.agent,
            ctx.attempts + 1,
            target,
            exc,
        )
        return AttemptFailure(str(exc), exc.retryable, exc.retry_after_s)

    def _finish_call(
        self, ctx: JobContext, call: CallRecord, reply: ChatReply
    ) -> AttemptFailure | None:
        number = ctx.attempts + 1
        try:
            result: Any = parse_output(ctx.agent, reply.content)
        except InvalidOutput as exc:
            error = str(exc)

            def record(session: Session) -> None:
                record_usage(session, ctx.job, call, billable=False)
                close_attempt(
                    session, call.attempt_id, AttemptStatus.FAILED, http_status=200, error=error
                )

            self._write(ctx, record)
            log.info(
                "job %s tenant %s agent %s attempt %d: %s",
                ctx.job.id,
                ctx.job.tenant_id,
                ctx.job.agent,
                number,
                exc,
            )
            return AttemptFailure(str(exc), retryable=True)

        completion = Completion(ctx.job, call, result)
        completed = self.ledger.write_batched(ctx.job.id, COMPLETE, completion)
        if not completed:
            log.warning(
                "job %s finished elsewhere first; attempt %d recorded as cost only",
                ctx.job.id,
                number,
            )
        log.info(
            "job %s tenant %s agent %s succeeded on attempt %d (%d prompt, %d output tokens)",
            ctx.job.id,
            ctx.job.tenant_id,
            ctx.job.agent,
            number,
            call.usage.prompt_tokens,
            call.usage.output_tokens,
        )
        return None

    def _write(self, ctx: JobContext, write: Callable[[Session], T]) -> T:
        """Write to the ledger for the job, retrying while the ledger is unreachable."""
        return self._write_retrying(ctx.job.id, write)

    def _write_retrying(self, job_id: str, write: Callable[[Session], T]) -> T:
        return self.ledger.write(job_id, write)

    def _wait_before_retry(self, ctx: JobContext, retry: int, failure: AttemptFailure) -> bool:
        """Wait out backoff and Retry-After; False when the wait would pass the deadline."""
        settings = self.runtime.settings
        delay_s = backoff_delay_s(retry, settings.backoff_base_s, settings.backoff_cap_s, self.rng)
        if failure.retry_after_s is not None:
            delay_s = max(delay_s, failure.retry_after_s)
        return self._sleep(ctx, delay_s, failure.message)

    def _wait_for_rate_limit(self, ctx: JobContext, target: Target) -> float:
        """Wait for the target's fleet-wide limits to admit the call; return 0 once admitted,
        or the wait that would pass the job's deadline.

        The call reserves its output cap plus an estimate of its prompt (four characters a
        token), so the tokens-per-minute limit is kept before the real count is known.
        """
        tokens = ctx.agent.max_tokens + sum(len(m["content"]) for m in ctx.messages) // 4
        while (wait_s := self.runtime.limiter.acquire(target, tokens)) > 0:
            if not self._sleep(ctx, wait_s, f"rate limit of {target}"):
                return wait_s
        return 0.0

    def _sleep(self, ctx: JobContext, delay_s: float, reason: str) -> bool:
        if delay_s >= _remaining_s(ctx.job):
            return False
        if delay_s > self.runtime.settings.requeue_after_s:
            self._write(ctx, lambda session: release_for_requeue(session, ctx.job.id))
            raise RequeueJob(delay_s, reason)
        self.sleep(delay_s)
        return True

    def _give_up(self, ctx: JobContext, reason: str) -> str:
        attempts = ctx.attempts
        error = (
            reason
            if not attempts
            else f"{reason} (gave up after {attempts} attempt{'s' if attempts != 1 else ''})"
        )
        failed = self._write(ctx, lambda session: fail_job(session, ctx.job.id, error))
        log.warning(
            "job %s tenant %s agent %s failed: %s",
            ctx.job.id,
            ctx.job.tenant_id,
            ctx.job.agent,
            error,
        )
        return "failed" if failed else "skipped"


def _log_skipped(job_id: str, reason: Skip) -> None:
    if reason is Skip.FINISHED:
        log.info("job %s is already finished; delivery skipped", job_id)
    elif reason is Skip.HELD:
        log.info("job %s is running under another delivery; duplicate delivery skipped", job_id)
    else:
        log.warning(
            "job %s is not in this worker's ledger; message dropped. Does another fleet, "
            "with another database, share this broker?",
            job_id,
        )


def _remaining_s(job: ClaimedJob) -> float:
    return (job.deadline_at - utcnow()).total_seconds()
