"""The promotion gate: a new model becomes active only if it is no worse than what serves now.

Candidate and incumbent are scored on the same newest held-out messages, in nats per character, so that
models with different tokenizers compare fairly (per-token losses would not). With nothing serving, any
candidate better than a uniform guess is promoted; a candidate no better than that never is.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeGuard

from db.serving import ServingModel
from db.verdicts import format_nats
from textgen.bundle import ServingBundle, load_serving_bundle
from textgen.evaluate import evaluate_messages


@dataclass(frozen=True)
class Verdict:
    """What the gate decided about a candidate.

    Attributes:
        promote: Whether the candidate becomes active.
        metrics: Its training metrics with the held-out scores of both models, safe to store as JSON.
        summary: One line saying why, for the version's note and the job's outcome.
    """

    promote: bool
    metrics: dict[str, Any]
    summary: str


def judge_candidate(
    candidate_bundle: Path,
    training_metrics: dict[str, Any],
    holdout: list[str],
    find_incumbent: Callable[[], ServingModel | None],
    *,
    parent: ServingBundle | None = None,
) -> Verdict:
    """Evaluate the candidate and the incumbent on `holdout`; promote the candidate when no worse.

    Both are scored by the NumPy engine on their bundles' weight arrays: no Keras model is built.

    Args:
        candidate_bundle: The trained bundle, still in staging.
        training_metrics: What training reported; kept in the verdict's metrics.
        holdout: The held-out messages, one string each.
        find_incumbent: What serves the scope now. Called after the candidate is scored, because an
            operator may have activated or rolled back a version meanwhile.
        parent: The bundle the candidate was fine-tuned from, already loaded: scored as it is when it
            is still the incumbent, rather than loaded again.
    """
    candidate_model = load_serving_bundle(candidate_bundle)
    candidate = evaluate_messages(candidate_model, holdout)
    incumbent = find_incumbent()
    incumbent_score = None
    if incumbent is not None:
        incumbent_bundle = parent if _is_at(parent, incumbent.path) else load_serving_bundle(incumbent.path)
        incumbent_score = evaluate_messages(incumbent_bundle, holdout).nats_per_char
    score = candidate.nats_per_char
    # A model no better than a uniform guess over its vocabulary writes noise: never promoted, even
    # where nothing serves yet or the incumbent is as bad.
    uniform = (
        math.log(candidate_model.tokenizer.vocab_size) * candidate.nats_per_char / candidate.nats_per_token
    )
    better_than_uniform = math.isfinite(score) and score < uniform
    promote_it = better_than_uniform and (incumbent_score is None or score <= incumbent_score)
    metrics = {
        **training_metrics,
        "holdout_nats_per_char": score,
        "holdout_messages": len(holdout),
        "holdout_chars": candidate.chars,
        "incumbent_nats_per_char": incumbent_score,
        "incumbent_source": incumbent.source if incumbent is not None else None,
        "incumbent_version_id": incumbent.version_id if incumbent is not None else None,
        "gate": "promoted" if promote_it else "rejected",
    }
    held_out = f"on {len(holdout)} newest held-out messages"
    if not better_than_uniform:
        summary = (
            f"{format_nats(score)} nats/char {held_out}, no better than a uniform guess "
            f"({format_nats(uniform)})"
        )
    elif incumbent_score is None:
        summary = f"{format_nats(score)} nats/char {held_out}; nothing served before"
    else:
        relation = "no worse than" if promote_it else "worse than"
        summary = (
            f"{format_nats(score)} nats/char {held_out}, {relation} {describe_model(incumbent)} at "
            f"{format_nats(incumbent_score)}"
        )
    return Verdict(promote_it, _json_safe(metrics), summary)


def describe_model(model: ServingModel | None) -> str:
    """How logs and notes name a parent or incumbent: "scratch", "the base model", "channel model v3".

    Never a path: notes are shown to the people of a workspace (`/status`, `/models`), and where the
    server keeps its files is none of theirs.
    """
    if model is None:
        return "scratch"
    if model.source == "base":
        return "the base model"
    return f"{model.source} model v{model.version}"


def _is_at(bundle: ServingBundle | None, path: Path) -> TypeGuard[ServingBundle]:
    """Whether `bundle` was loaded from the bundle directory `path`."""
    return bundle is not None and Path(bundle.path) == Path(path)


def _json_safe(value: Any) -> Any:
    """Metrics as JSON both databases accept: no NaN or infinities (PostgreSQL's JSON has none)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(key): _json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(item) for item in value]
    return value
