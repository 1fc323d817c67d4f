"""CPU time and RSS of another process, sampled from a background thread."""

import threading
import time
from dataclasses import dataclass, field

import psutil

MIB = 1024 * 1024


@dataclass(frozen=True)
class Sample:
    at: float
    cpu_s: float
    rss: int


@dataclass
class ProcessSampler:
    """Sampler of a process's CPU time and RSS, run from a background thread.

    Times are ``time.time()`` values, so they line up with ledger timestamps.
    """

    pid: int
    interval_s: float = 0.2
    samples: list[Sample] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __post_init__(self) -> None:
        self._process = psutil.Process(self.pid)

    def sample(self) -> Sample:
        times = self._process.cpu_times()
        point = Sample(time.time(), times.user + times.system, self._process.memory_info().rss)
        self.samples.append(point)
        return point

    def start(self) -> "ProcessSampler":
        self.sample()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.sample()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.sample()
            except psutil.Error:
                return

    def cores_between(self, start: float, end: float) -> float:
        """Return CPU seconds per second between the samples nearest to start and end."""
        first = min(self.samples, key=lambda s: abs(s.at - start))
        last = min(self.samples, key=lambda s: abs(s.at - end))
        wall = last.at - first.at
        return (last.cpu_s - first.cpu_s) / wall if wall > 0 else 0.0

    def max_rss_between(self, start: float, end: float) -> int:
        inside = [s.rss for s in self.samples if start <= s.at <= end]
        return max(inside) if inside else max(s.rss for s in self.samples)
