"""Billing periods: calendar months in UTC."""

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time


@dataclass(frozen=True, order=True)
class Period:
    """A billing period from ``start`` (inclusive) to ``end`` (exclusive)."""

    start: date
    end: date

    @classmethod
    def month_of(cls, moment: datetime) -> "Period":
        moment = moment.astimezone(UTC)
        start = date(moment.year, moment.month, 1)
        return cls(start, _next_month(start))

    @classmethod
    def parse(cls, text: str) -> "Period":
        """Parse a month written as YYYY-MM."""
        match = re.fullmatch(r"(\d{4})-(\d{2})", text.strip())
        if not match or not 1 <= int(match.group(2)) <= 12 or int(match.group(1)) < 1:
            raise ValueError(f"invalid period {text!r}; write a month as YYYY-MM, e.g. 2026-12")
        start = date(int(match.group(1)), int(match.group(2)), 1)
        return cls(start, _next_month(start))

    def previous(self) -> "Period":
        last_day = date.fromordinal(self.start.toordinal() - 1)
        start = date(last_day.year, last_day.month, 1)
        return Period(start, self.start)

    @property
    def start_at(self) -> datetime:
        return datetime.combine(self.start, time(), tzinfo=UTC)

    @property
    def end_at(self) -> datetime:
        return datetime.combine(self.end, time(), tzinfo=UTC)

    def __str__(self) -> str:
        return f"{self.start:%Y-%m}"


def _next_month(start: date) -> date:
    return date(start.year + start.month // 12, start.month % 12 + 1, 1)
