"""Benchmark results: one table row per compared figure, the absolute figures, and the JSON record."""

from __future__ import annotations

import json
import math
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Row:
    """One line of the final table.

    Args:
        name: what is compared.
        baseline: what the project is compared with, e.g. "seed predict loop" (run in the same script).
        baseline_value: the baseline's figure, in `unit` (None: no baseline, e.g. an absolute target).
        project_value: the project's figure, in `unit`.
        unit: unit of both figures ("ms/token", "MB", "nats/char", ...).
        ratio: how the two compare, oriented as `target` reads (speed-up, slow-down or memory ratio).
        target: the target as text ("≥100x", "≤3x", "≤1.55"), or "" for an informational row.
        met: whether the target is met; None where there is no target or it could not be measured.
        note: a short qualifier shown beside the row ("projected", "skipped: ...").
    """

    name: str
    baseline: str = ""
    baseline_value: float | None = None
    project_value: float | None = None
    unit: str = ""
    ratio: float | None = None
    target: str = ""
    met: bool | None = None
    note: str = ""


@dataclass
class Outcome:
    """What one benchmark produced: table rows and the absolute figures behind them."""

    rows: list[Row] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)


def format_value(value: float | None, unit: str = "") -> str:
    """A figure with three significant digits and its unit; "—" when missing."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    magnitude = abs(value)
    if magnitude >= 1000:
        text = f"{value:,.0f}"
    elif magnitude >= 100:
        text = f"{value:.0f}"
    elif magnitude >= 10:
        text = f"{value:.1f}"
    elif magnitude >= 1:
        text = f"{value:.2f}"
    else:
        text = f"{value:.3g}"
    return f"{text} {unit}".strip()


def format_ratio(ratio: float | None) -> str:
    if ratio is None or math.isnan(ratio):
        return "—"
    return f"{ratio:,.0f}x" if ratio >= 100 else f"{ratio:.2f}x" if ratio < 10 else f"{ratio:.1f}x"


def format_table(rows: list[Row]) -> str:
    """The rows as a Markdown table (readable in a terminal and pasteable into the issue note)."""
    header = ["benchmark", "baseline", "project", "ratio", "target", "met?"]
    lines = []
    for row in rows:
        baseline = format_value(row.baseline_value, row.unit) if row.baseline_value is not None else ""
        if row.baseline:
            baseline = f"{baseline} ({row.baseline})" if baseline else row.baseline
        met = {True: "yes", False: "NO", None: "—"}[row.met]
        name = f"{row.name} [{row.note}]" if row.note else row.name
        project = format_value(row.project_value, row.unit)
        lines.append([name, baseline or "—", project, format_ratio(row.ratio), row.target or "—", met])
    widths = [
        max(len(header[i]), *(len(line[i]) for line in lines)) if lines else len(header[i]) for i in range(6)
    ]

    def render(cells: list[str]) -> str:
        return "| " + " | ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True)) + " |"

    out = [render(header), "| " + " | ".join("-" * width for width in widths) + " |"]
    out.extend(render(line) for line in lines)
    return "\n".join(out)


def format_figures(figures: dict[str, dict[str, Any]]) -> str:
    """The absolute figures, one `benchmark.key: value` line each, nested dicts flattened."""
    lines: list[str] = []

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                walk(f"{prefix}.{key}" if prefix else str(key), inner)
        elif isinstance(value, float):
            lines.append(f"  {prefix}: {value:.4g}")
        else:
            lines.append(f"  {prefix}: {value}")

    walk("", figures)
    return "\n".join(lines)


def environment() -> dict[str, Any]:
    """What the figures were measured on: they only compare within one machine and one run."""
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "executable": sys.executable,
    }


def write_results(
    path: Path,
    rows: list[Row],
    figures: dict[str, Any],
    *,
    quick: bool,
    elapsed: float,
    skipped: list[str],
    references: list[dict[str, Any]],
) -> None:
    """Write the JSON record of a run (rows, absolute figures, references, environment) to `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "quick": quick,
        "elapsed_seconds": elapsed,
        "environment": environment(),
        "rows": [asdict(row) for row in rows],
        "figures": figures,
        "references": references,
        "skipped": skipped,
    }
    path.write_text(json.dumps(record, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
