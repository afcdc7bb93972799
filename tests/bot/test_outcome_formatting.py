"""How /status, /models and `chatsmith models list` describe a retrain the gate rejected or promoted."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.core.formatting import describe_job, describe_version
from db.models import ModelVersion, TrainingJob
from db.verdicts import gate_outcome, held_out_score

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
REJECTED = {
    "val_nats_per_char": 1.325,
    "holdout_nats_per_char": 1.6004,
    "incumbent_nats_per_char": 1.5301,
    "gate": "rejected",
}


def _finished_job(version_id: int) -> TrainingJob:
    return TrainingJob(
        id=7,
        scope_key="1:2",
        reason="schedule",
        status="succeeded",
        model_version_id=version_id,
        created_at=NOW - timedelta(minutes=20),
        finished_at=NOW - timedelta(minutes=5),
    )


def _version(metrics: dict[str, object], status: str) -> ModelVersion:
    return ModelVersion(
        id=3, version=2, status=status, metrics=metrics, created_at=NOW - timedelta(minutes=5), note=None
    )


def test_a_rejected_retrain_reads_as_not_promoted_with_both_figures_never_succeeded() -> None:
    version = _version(REJECTED, "rejected")
    text = describe_job(_finished_job(3), "#general", None, NOW, version)
    assert text == "Last training of #general: not promoted: 1.600 vs 1.530 serving, 5 min ago."
    assert "succeeded" not in text


def test_a_promoted_retrain_says_so_with_its_figures() -> None:
    metrics = {**REJECTED, "holdout_nats_per_char": 1.41, "gate": "promoted"}
    text = describe_job(_finished_job(3), "#general", None, NOW, _version(metrics, "active"))
    assert text.startswith("Last training of #general: promoted: 1.410 vs 1.530 serving")


def test_a_version_shows_one_figure_the_gates_held_out_score() -> None:
    # Training's validation figure (1.325) and the gate's held-out figure differ; only the latter shows.
    text = describe_version(_version({**REJECTED, "gate": "promoted"}, "active"), NOW)
    assert "1.600 nats/char" in text and "1.325" not in text
    # A rejected version (`/models`) names the figures the gate compared.
    rejected = describe_version(_version(REJECTED, "rejected"), NOW)
    assert rejected.startswith("not promoted: 1.600 vs 1.530 serving") and "1.325" not in rejected
    assert held_out_score({"val_nats_per_char": 1.325}) == 1.325


def test_outcome_without_an_incumbent_and_for_versions_the_gate_never_judged() -> None:
    first = {"holdout_nats_per_char": 2.0, "incumbent_nats_per_char": None, "gate": "promoted"}
    assert gate_outcome(first) == "promoted: 2.000, nothing served before"
    noise = {"holdout_nats_per_char": 5.9, "gate": "rejected"}
    assert gate_outcome(noise) == "not promoted: 5.900, no better than a uniform guess"
    assert gate_outcome({"val_nats_per_char": 1.3}) is None and gate_outcome(None) is None
