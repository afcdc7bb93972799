"""A training job that read a member's messages is stopped and queued again when they use forget-me, and its
second run learns nothing from them and fine-tunes from no model that saw them."""

from __future__ import annotations

import dataclasses
import threading
import time
from pathlib import Path

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from db.engine import immediate
from db.forgetting import versions_that_saw_author, withdraw_versions
from db.jobs import claim_next_job, request_training
from db.messages import forget_user
from db.model_store import LocalModelStore
from db.models import ModelVersion, ModelVersionAuthor, TrainingJob
from tests.trainer.conftest import ScopeMaker, register_version
from trainer.config import TrainerConfig
from trainer.worker import Worker


def test_a_running_job_that_read_the_messages_starts_again_without_them(
    engine: Engine,
    store: LocalModelStore,
    trainer_config: TrainerConfig,
    make_scope: ScopeMaker,
    tiny_bundle: Path,
) -> None:
    scope = make_scope(messages=300)  # written by user0 .. user6
    seen_by_parent = register_version(engine, store, scope, tiny_bundle, activate=True)
    job_id = request_training(engine, scope, "admin").job.id
    endless = dataclasses.replace(
        trainer_config, train_config={"epochs": 100000, "patience": 100000, "batch_size": 8}
    )
    claimed = claim_next_job(engine, "w1")
    assert claimed is not None and claimed.id == job_id
    outcomes = []
    runner = threading.Thread(
        target=lambda: outcomes.append(Worker(engine, endless, store, "w1").run_job(claimed))
    )
    runner.start()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with Session(engine) as session:
                if ((session.get(TrainingJob, job_id).progress) or {}).get("epoch"):  # type: ignore[union-attr]
                    break
            time.sleep(0.1)

        # user0 asks to be forgotten while the job trains on a corpus that holds their words.
        with Session(immediate(engine)) as session, session.begin():
            forgotten = forget_user(session, scope.workspace_id, "user0")
            withdrawal = withdraw_versions(
                session,
                versions_that_saw_author(session, scope.workspace_id, "user0"),
                reason="forget-me",
                affected_scopes=forgotten.affected_scopes,
            )
        assert withdrawal.requeued_jobs == [job_id]
    finally:
        runner.join(60)
    assert not runner.is_alive()
    assert [outcome.status for outcome in outcomes] == ["lost"]

    with Session(engine) as session:
        job = session.get(TrainingJob, job_id)
        assert job is not None and job.status == "queued"
        assert session.get(ModelVersion, seen_by_parent).status == "retired"  # type: ignore[union-attr]

    # The job runs again: from scratch (the only model there saw user0), and without user0's messages.
    [again] = Worker(engine, trainer_config, store, "w2").process_queue()
    assert again.job_id == job_id and again.status == "succeeded", again.message
    with Session(engine) as session:
        retrained = session.get(ModelVersion, again.model_version_id)
        assert retrained is not None and retrained.parent_version_id is None and retrained.exposure_recorded
        authors = set(
            session.scalars(
                select(ModelVersionAuthor.author_id).where(
                    ModelVersionAuthor.model_version_id == retrained.id
                )
            )
        )
    assert authors == {f"user{i}" for i in range(1, 7)}
