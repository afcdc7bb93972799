"""The Markdown summary of a run: the table, the references apart, the absolute figures, and where and
how they were measured. A complete full run writes it to `bench/RESULTS.md`, which is committed."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from bench.references import format_references
from bench.report import Row, environment, format_figures, format_table


def write_summary(
    path: Path, rows: list[Row], figures: dict[str, Any], *, mode: str, elapsed: float, command: str
) -> None:
    """Write the summary of one run to `path`."""
    machine = environment()
    text = "\n".join(
        [
            "# chatsmith benchmark results",
            "",
            f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
            f"- machine: {machine['cpus']} CPUs (`os.cpu_count()`), {machine['platform']}, "
            f"Python {machine['python']}",
            f"- command: `{command}`",
            f"- mode: {mode}; {elapsed / 60:.0f} minutes",
            "",
            "Each ratio compares two things run by the same script on the same machine.",
            "",
            format_table(rows),
            "",
            "## References, measured elsewhere",
            "",
            "For orientation only: not run by this script, so never a ratio in the table.",
            "",
            format_references(),
            "",
            "## Absolute figures",
            "",
            "```text",
            format_figures(figures),
            "```",
            "",
        ]
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
