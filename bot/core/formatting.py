"""How replies describe model versions, training jobs and ages, in one line each."""

from __future__ import annotations

import math
from datetime import UTC, datetime

from bot.core.cooldowns import describe_wait
from bot.core.errors import without_server_paths
from db.models import ModelVersion, TrainingJob
from db.verdicts import format_nats, gate_outcome, held_out_score
from errortext import first_line


def describe_age(moment: datetime | None, now: datetime) -> str:
    """How long ago `moment` was: "12 s ago", "5 min ago", "3 h ago", "2 days ago", or "never"."""
    if moment is None:
        return "never"
    seconds = max(0.0, (now - moment.astimezone(UTC)).total_seconds())
    if seconds < 90:
        return f"{int(seconds)} s ago"
    if seconds < 90 * 60:
        return f"{int(seconds // 60)} min ago"
    if seconds < 36 * 3600:
        return f"{int(seconds // 3600)} h ago"
    return f"{int(seconds // 86400)} days ago"


def describe_version(version: ModelVersion, now: datetime) -> str:
    """A version's score (for one the gate rejected, both figures it compared), corpus size, age and note."""
    parts = []
    metrics = version.metrics or {}
    score, outcome = held_out_score(metrics), gate_outcome(metrics)
    if outcome is not None and version.status == "rejected":
        parts.append(outcome)
    elif score is not None:
        parts.append(f"{format_nats(score)} nats/char on held-out messages")
    elif isinstance(metrics.get("val_loss"), int | float):
        parts.append(f"validation loss {metrics['val_loss']:.3f}")
    stats = version.corpus_stats or {}
    if isinstance(stats.get("messages"), int):
        parts.append(f"trained on {stats['messages']} messages")
    parts.append(
        f"{'activated' if version.activated_at else 'made'} "
        f"{describe_age(version.activated_at or version.created_at, now)}"
    )
    if version.note:
        parts.append(f"note: {without_server_paths(version.note)}")
    return ", ".join(parts)


def describe_job(
    job: TrainingJob, where: str, position: int | None, now: datetime, version: ModelVersion | None = None
) -> str:
    """A job's state: its place in the queue, its progress, or how it ended (with `version`, the model it
    made: whether the gate promoted it, rather than a bare "succeeded")."""
    if job.status == "queued":
        return f"Training of {where}: queued" + (f", position {position}." if position else ".")
    if job.status == "running":
        progress = job.progress or {}
        text = f"Training of {where}: running"
        if "epoch" in progress and "epochs" in progress:
            text += f", epoch {progress['epoch']}/{progress['epochs']}"
        if isinstance(progress.get("fraction"), int | float):
            text += f", {progress['fraction']:.0%}"
        if isinstance(progress.get("loss"), int | float):
            text += f", loss {progress['loss']:.3f}"
        eta = progress.get("eta_seconds")
        if isinstance(eta, int | float) and math.isfinite(eta):
            text += f", about {describe_wait(eta)} left"
        return text + "."
    outcome = gate_outcome(version.metrics) if version is not None and job.status == "succeeded" else None
    ended = f"{outcome}," if outcome else job.status
    text = f"Last training of {where}: {ended} {describe_age(job.finished_at or job.created_at, now)}"
    if job.status == "failed" and job.error:
        text += f" ({without_server_paths(first_line(job.error))[:200]})"
    return text + "."
