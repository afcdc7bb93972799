"""The replies benchmark for a person: each writer's detectability beside its other figures, and replies
to read, as Markdown appended to the run's summary."""

from __future__ import annotations

from typing import Any

# Replies of each writer printed for reading.
SAMPLES_SHOWN = 20


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ⏎ ") or "(empty)"


def writers_table(writers: dict[str, dict[str, Any]]) -> str:
    """One Markdown row per writer: AUC mean and spread over seeds, copies, distinct word pairs, mean
    characters and CPU per reply."""
    lines = [
        "| writer | detectability AUC (0.5 = indistinguishable) | spread over seeds | copies | "
        "distinct word pairs | mean characters | CPU per reply |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, figures in writers.items():
        cpu = figures.get("cpu_ms_per_reply")
        lines.append(
            f"| {name} | {figures['auc']:.3f} | ±{figures['auc_spread']:.3f} | "
            f"{100 * figures.get('copy_rate', 0.0):.1f}% | {figures.get('distinct_pairs', 0.0):.2f} | "
            f"{figures['mean_chars']:.0f} | {'—' if cpu is None else f'{cpu:.0f} ms'} |"
        )
    return "\n".join(lines)


def reading(figures: dict[str, Any]) -> str:
    """The section appended to the summary: the table, then `SAMPLES_SHOWN` replies of each writer."""
    writers = figures["writers"]
    parts = [
        "## Replies, to read",
        "",
        f"Stripe channel, newest third held out; {figures['replies']} replies per writer and seed, "
        f"{figures['seeds']} generation seed(s); each AUC against as many held-out messages.",
        "",
        writers_table(writers),
    ]
    for name, writer in writers.items():
        parts += ["", f"### {name}", ""]
        parts += [f"{number}. {_cell(text)}" for number, text in enumerate(writer["samples"], 1)]
    return "\n".join(parts) + "\n"
