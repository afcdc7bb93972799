"""The retention limit: old messages are deleted on the trainer's schedule and the models holding them go."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from pathlib import Path

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from db.forgetting import record_exposure
from db.jobs import open_job
from db.model_store import LocalModelStore
from db.models import Message, ModelVersion, utcnow
from db.registry import get_version
from db.serving import serving_model_for_scope
from tests.trainer.conftest import ScopeMaker, register_version
from trainer.config import TrainerConfig
from trainer.retention import apply_retention
from trainer.service import TrainerService


def test_messages_past_the_limit_go_and_so_do_the_models_that_learned_from_them(
    engine: Engine,
    store: LocalModelStore,
    tiny_bundle: Path,
    make_scope: ScopeMaker,
    trainer_config: TrainerConfig,
) -> None:
    scope = make_scope(messages=150)  # written an hour ago
    now = utcnow()
    with Session(engine) as session, session.begin():
        session.add_all(
            Message(
                channel_id=scope.channel_id,
                platform_message_id=f"old{i}",
                author_id="ann",
                text=f"said long ago {i}",
                created_at=now - timedelta(days=40),
            )
            for i in range(20)
        )
    old_id = register_version(engine, store, scope, tiny_bundle, activate=False)
    new_id = register_version(engine, store, scope, tiny_bundle, activate=True)
    with Session(engine) as session, session.begin():
        record_exposure(session, get_version(session, old_id), {"ann"}, now - timedelta(days=40))
        record_exposure(session, get_version(session, new_id), {"ann"}, now - timedelta(days=40))
    with Session(engine) as session:
        bundle = Path(get_version(session, new_id).bundle_path or "")
    assert bundle.is_dir()

    # Through the trainer, as its schedule runs it.
    service = TrainerService(
        engine, dataclasses.replace(trainer_config, retention_days=30), store, "retention"
    )
    service.apply_retention()

    with Session(engine) as session:
        assert (
            session.scalar(
                select(func.count(Message.id)).where(Message.created_at < now - timedelta(days=30))
            )
            == 0
        )
        assert session.scalar(select(func.count(Message.id))) == 150
        for version_id in (old_id, new_id):
            version = session.get(ModelVersion, version_id)
            assert version is not None and version.status == "retired" and version.bundle_path is None
            assert "retention limit of 30 days" in (version.note or "")
        assert serving_model_for_scope(session, scope) is None  # nothing that held them serves
        assert open_job(session, scope) is not None  # 150 messages left: retrained
    assert not bundle.exists()

    # A second pass finds nothing more to do.
    again = apply_retention(engine, store, 30, min_messages=100)
    assert again.deleted_messages == 0 and again.withdrawal.versions == []
