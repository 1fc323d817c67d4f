"""Figures of one run: a row per figure with its baseline, ratio and target, as JSON."""

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

TargetOn = Literal["ratio", "difference", "figure"]
TargetOp = Literal[">=", "<=", "<"]


@dataclass(frozen=True)
class Target:
    """A bound on a row's ratio, on figure minus baseline, or on the figure itself."""

    on: TargetOn
    op: TargetOp
    value: float

    def met(self, figure: float, baseline: float) -> bool:
        measured = {"ratio": figure / baseline, "difference": figure - baseline, "figure": figure}
        value = measured[self.on]
        if self.op == ">=":
            return value >= self.value
        if self.op == "<=":
            return value <= self.value
        return value < self.value

    def describe(self, unit: str) -> str:
        if self.on == "ratio":
            return f"ratio {self.op} {self.value:g}"
        if self.on == "difference":
            return f"added {self.op} {self.value:g} {unit}"
        return f"figure {self.op} {self.value:g} {unit}"


@dataclass(frozen=True)
class Row:
    """One measured figure beside the baseline it is compared with.

    ``ratio`` is always figure / baseline, whatever the unit.
    """

    name: str
    measure: str
    unit: str
    figure: float
    baseline_name: str
    baseline: float
    target: Target | None = None

    @property
    def ratio(self) -> float:
        return self.figure / self.baseline if self.baseline else math.inf

    @property
    def met(self) -> bool | None:
        return None if self.target is None else self.target.met(self.figure, self.baseline)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["ratio"] = self.ratio
        data["met"] = self.met
        data["target_text"] = self.target.describe(self.unit) if self.target else None
        return data


@dataclass
class ScenarioResult:
    """Rows and raw details of one scenario, or the error that stopped it."""

    name: str
    title: str
    rows: list[Row] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    duration_s: float = 0.0
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "rows": [row.to_dict() for row in self.rows],
            "details": self.details,
            "duration_s": self.duration_s,
            "error": self.error,
        }


def row_from_dict(data: dict[str, Any]) -> Row:
    target = data.get("target")
    return Row(
        name=data["name"],
        measure=data["measure"],
        unit=data["unit"],
        figure=data["figure"],
        baseline_name=data["baseline_name"],
        baseline=data["baseline"],
        target=Target(**target) if target else None,
    )
