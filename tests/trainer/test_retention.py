"""The retention limit: old messages are deleted on the trainer's schedule and the models holding them go."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from db.forgetting import record_exposure
from db.jobs import open_job, request_training
from db.model_store import LocalModelStore
from db.models import Message, ModelVersion, ModelVersionAuthor, utcnow
from db.registry import get_version
from db.serving import serving_model_for_scope
from tests.trainer.conftest import ScopeMaker, register_version
from trainer.config import TrainerConfig
from trainer.retention import apply_retention
from trainer.service import TrainerService
from trainer.worker import Worker


def test_messages_past_the_limit_go_and_so_do_the_models_that_learned_from_them(
    engine: Engine,
    store: LocalModelStore,
    tiny_bundle: Path,
    make_scope: ScopeMaker,
    trainer_config: TrainerConfig,
) -> None:
    scope = make_scope(messages=150)  # written an hour ago
    now = utcnow()
    _add_old_messages(engine, scope.channel_id, now)
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


def test_a_job_never_reads_messages_past_the_limit_even_before_the_hourly_pass(
    engine: Engine, store: LocalModelStore, make_scope: ScopeMaker, trainer_config: TrainerConfig
) -> None:
    scope = make_scope(messages=150)  # written an hour ago by user0 .. user6
    now = utcnow()
    _add_old_messages(engine, scope.channel_id, now)
    request_training(engine, scope, "cli")

    # The job runs before the hourly pass has deleted anything.
    config = dataclasses.replace(trainer_config, retention_days=30)
    [outcome] = Worker(engine, config, store, "w").process_queue()

    assert outcome.status == "succeeded", outcome.message
    with Session(engine) as session:
        version = session.get(ModelVersion, outcome.model_version_id)
        assert version is not None and version.corpus_stats["messages"] == 150
        authors = set(
            session.scalars(
                select(ModelVersionAuthor.author_id).where(ModelVersionAuthor.model_version_id == version.id)
            )
        )
        assert "ann" not in authors and authors
        assert version.oldest_message_at is not None
        assert version.oldest_message_at > now - timedelta(days=30)
    # So the pass that follows deletes the old messages and has no model to withdraw for them.
    result = apply_retention(engine, store, 30, min_messages=100)
    assert result.deleted_messages == 20 and result.withdrawal.versions == []


def _add_old_messages(engine: Engine, channel_id: int | None, now: datetime) -> None:
    """Twenty messages by ann, written 40 days before `now`: past a 30-day limit."""
    with Session(engine) as session, session.begin():
        session.add_all(
            Message(
                channel_id=channel_id,
                platform_message_id=f"old{i}",
                author_id="ann",
                text=f"said long ago {i}",
                created_at=now - timedelta(days=40),
            )
            for i in range(20)
        )
