"""Version notes are shown to a workspace's people (`/status`, `/models`): they never hold a server path."""

from __future__ import annotations

from pathlib import Path

from db.serving import ServingModel
from trainer.gate import describe_model


def test_the_base_model_is_named_without_its_path() -> None:
    base = ServingModel(path=Path("/srv/chatsmith/data/base-model"), source="base")
    assert describe_model(base) == "the base model"
    channel = ServingModel(path=Path("/srv/models/1/2/model-v3"), source="channel", version_id=9, version=3)
    assert describe_model(channel) == "channel model v3"
    assert describe_model(None) == "scratch"
