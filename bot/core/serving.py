"""Which model answers a request, named the way replies name it ("channel model v3", "base model")."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bot.core.request import Request
from bot.core.services import Services
from db.models import ModelVersion
from db.serving import serving_model_in


@dataclass(frozen=True)
class ServingModel:
    """The bundle that answers in a channel, and how to name it ("channel model v3")."""

    path: Path
    label: str
    version: ModelVersion | None = None


def serving_model(services: Services, request: Request) -> ServingModel | None:
    """Channel model, else workspace model, else base model (architecture decision 7; `db.serving`).

    Runs its own transaction; call it on the database threads.
    """
    # Deferred: usually it only reads; the rare write (flagging a vanished bundle) is retried.
    with services.sessions.begin() as session:
        serving = serving_model_in(
            session,
            request.platform,
            request.workspace,
            request.channel,
            store=services.store,
            base_model=services.config.base_model_path,
        )
        if serving is None:
            return None
        if serving.source == "base":
            return ServingModel(serving.path, "base model")
        version = session.get(ModelVersion, serving.version_id) if serving.version_id else None
        return ServingModel(serving.path, f"{serving.source} model v{serving.version}", version)
