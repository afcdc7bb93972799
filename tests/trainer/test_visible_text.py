"""What the trainer writes where members read it (`/status`, `/models`) holds no path on the server; the whole
cause, paths included, stays in the job row's detail and the log for operators."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from db.jobs import request_training
from db.model_store import LocalModelStore
from db.models import ModelVersion, TrainingJob
from errortext import first_line
from tests.trainer.conftest import ScopeMaker
from textgen.errors import TextgenError
from trainer.config import TrainerConfig
from trainer.failures import job_error_text, one_line_error
from trainer.worker import Worker

# A path as a member would spot one: a slash that starts a word.
ABSOLUTE_PATH = re.compile(r"(^|[\s'\"(=])/\w")


def test_a_scopes_first_version_names_the_base_model_but_not_where_it_lives(
    engine: Engine,
    store: LocalModelStore,
    trainer_config: TrainerConfig,
    make_scope: ScopeMaker,
    tiny_bundle: Path,
) -> None:
    scope = make_scope(messages=300)
    request_training(engine, scope, "cli")
    config = dataclasses.replace(trainer_config, base_model=tiny_bundle)

    [outcome] = Worker(engine, config, store, "w").process_queue()

    assert outcome.status == "succeeded", outcome.message
    with Session(engine) as session:
        version = session.get(ModelVersion, outcome.model_version_id)
        assert version is not None
        note = version.note or ""
    assert note.startswith(f"job {outcome.job_id} (attempt 1) from the base model;"), note
    assert str(tiny_bundle) not in note and not ABSOLUTE_PATH.search(note), note


def test_a_failed_jobs_line_holds_no_server_path_and_its_row_keeps_the_cause(
    engine: Engine,
    store: LocalModelStore,
    trainer_config: TrainerConfig,
    make_scope: ScopeMaker,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    scope = make_scope(messages=300)
    job_id = request_training(engine, scope, "cli").job.id
    staged = f"{store.root}/.staging/job-{job_id}-x1/model.weights.h5"

    def unwritable(*_args: object, **_kwargs: object) -> None:
        raise PermissionError(13, "Permission denied", staged)

    monkeypatch.setattr("trainer.worker.train_candidate", unwritable)
    [outcome] = Worker(engine, trainer_config, store, "w").process_queue()

    assert outcome.status == "failed"
    with Session(engine) as session:
        job = session.get(TrainingJob, job_id)
        version = session.get(ModelVersion, outcome.model_version_id)
        assert job is not None and version is not None
        error, note = job.error or "", version.note or ""
    shown = first_line(error)  # what the bots show
    assert shown == "PermissionError: [Errno 13] Permission denied: '[path]'; see the trainer's log"
    assert outcome.message == shown
    assert str(store.root) not in note and "Permission denied: '[path]'" in note
    # Operators keep the whole cause in the row.
    assert staged in error


@pytest.mark.parametrize(
    ("error", "line"),
    [
        (
            TextgenError("bundle /opt/chatsmith/base-model has no weights; retrain"),
            "bundle [path] has no weights",
        ),
        (
            OSError(5, "Input/output error", "C:\\models\\x"),
            "OSError: [Errno 5] Input/output error: '[path]'",
        ),
        (RuntimeError("cannot open data/models/.staging/job-3-x"), "RuntimeError: cannot open [path]"),
    ],
)
def test_every_kind_of_path_is_cut_from_the_line_and_kept_in_the_detail(error: Exception, line: str) -> None:
    assert one_line_error(error).startswith(line)
    assert str(error) in job_error_text(error).split("\n", 1)[1]


def test_what_is_not_a_path_reads_as_written() -> None:
    text = "0.91 nats/char on 30 newest held-out messages, better than channel model v2 at 1.02; epoch 2/3"
    assert one_line_error(TextgenError(text)) == text
