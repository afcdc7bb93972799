"""The replies benchmark's detectability rows: the calibration, every writer, and the goal."""

from __future__ import annotations

from typing import Any

from bench.report import Row

# The calibration (real against real) reads as sound within this distance of 0.5.
CALIBRATION_TOLERANCE = 0.1
# The bot's defaults must be this much harder to spot than markovify and than temperature alone.
GOAL_MARGIN = 0.05


def _note(figures: dict[str, Any]) -> str:
    cpu = figures.get("cpu_ms_per_reply")
    return (
        f"±{figures['auc_spread']:.3f}; {100 * figures['copy_rate']:.1f}% copies, "
        f"pairs {figures['distinct_pairs']:.2f}, {figures['mean_chars']:.0f} chars"
        + ("" if cpu is None else f", {cpu:.0f} ms CPU")
    )


def detectability_rows(figures: dict[str, Any]) -> list[Row]:
    """Rows for the calibration, each writer (mean AUC over seeds), and the bot's defaults against the
    better of markovify and the temperature curve."""
    calibration = figures["calibration_auc"]
    rows = [
        Row(
            name="replies: detectability AUC, real vs real held-out messages (calibration)",
            project_value=calibration,
            unit="AUC",
            target="≈0.5",
            met=abs(calibration - 0.5) <= CALIBRATION_TOLERANCE,
        )
    ]
    writers: dict[str, dict[str, Any]] = figures["writers"]
    rows += [
        Row(
            name=f"replies: detectability AUC, {name}",
            project_value=writer["auc"],
            unit="AUC",
            note=_note(writer),
        )
        for name, writer in writers.items()
    ]
    temperature_only = {
        name: w for name, w in writers.items() if "temperature" in name and "no context" in name
    }
    rivals = {"markovify, state 2": writers["markovify, state 2"], **temperature_only}
    rival = min(rivals, key=lambda name: rivals[name]["auc"])
    defaults = figures["fine-tuned"]
    rows.append(
        Row(
            name="replies: detectability AUC, fine-tuned at the defaults vs best of markovify and temperature",
            baseline=rival,
            baseline_value=rivals[rival]["auc"],
            project_value=defaults["auc"],
            unit="AUC",
            target=f"≤ baseline − {GOAL_MARGIN}",
            met=defaults["auc"] <= rivals[rival]["auc"] - GOAL_MARGIN,
        )
    )
    return rows
