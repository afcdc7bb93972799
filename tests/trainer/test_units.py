"""Small pieces: the recent hold-out split, the corpus of a scope, importing, the model store, settings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from chatsmith.base_model import find_base_model
from db.messages import forget_user, record_message
from db.model_store import LocalModelStore
from db.models import Channel, Message
from db.scopes import Scope, get_or_create_channel, get_or_create_workspace
from textgen.corpus import parse_corpus
from trainer.config import TrainerConfig
from trainer.corpus import load_scope_corpus, split_recent
from trainer.errors import CorpusTooSmall, TrainerError
from trainer.importing import import_corpus

SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def test_split_holds_out_the_newest_messages() -> None:
    messages = [f"m{index}" for index in range(50)]
    corpus = split_recent(messages, 0.1)
    assert corpus.holdout == messages[-5:] and corpus.train == messages[:-5]
    assert split_recent(messages[:3], 0.1).holdout == ["m2"]  # at least one
    assert len(split_recent(messages, 0.4, max_holdout=7).holdout) == 7
    assert corpus.stats["holdout_messages"] == 5 and corpus.stats["train_chars"] == sum(
        map(len, messages[:-5])
    )


@SQLITE_ONLY
def test_scope_corpus_is_scrubbed_filtered_and_split_by_time(engine: Engine) -> None:
    start = datetime(2025, 1, 1, tzinfo=UTC)
    with Session(engine) as session, session.begin():
        workspace = get_or_create_workspace(session, "discord", "G1")
        channel = get_or_create_channel(session, workspace, "C1")
        channel.collecting = True
        texts = [f"message {index} for <@123> at https://example.com/x" for index in range(30)]
        for index, text in enumerate(texts):
            record_message(session, channel, f"id{index}", "alice", text, start + timedelta(minutes=index))
        record_message(session, channel, "bot", "me", "I am a bot", start, author_is_bot=True)
        record_message(session, channel, "cmd", "bob", "/generate please", start)
        scope = Scope(workspace.id, channel.id)

    with Session(engine) as session:
        corpus = load_scope_corpus(session, scope, min_messages=10, holdout_fraction=0.2)
    assert corpus.holdout == [f"message {index} for @user at <url>" for index in range(24, 30)]
    assert (
        len(corpus.train) == 24
        and "I am a bot" not in corpus.train
        and "/generate please" not in corpus.train
    )

    with Session(engine) as session, session.begin():
        forget_user(session, scope.workspace_id, "alice")
    with Session(engine) as session, pytest.raises(CorpusTooSmall, match="has 0 trainable messages"):
        load_scope_corpus(session, scope, min_messages=10, holdout_fraction=0.2, scope_name="#C1")


@SQLITE_ONLY
def test_a_long_history_is_cut_to_its_newest_messages_that_fit_the_character_cap(engine: Engine) -> None:
    start = datetime(2025, 1, 1, tzinfo=UTC)
    with Session(engine) as session, session.begin():
        workspace = get_or_create_workspace(session, "discord", "G1")
        channel = get_or_create_channel(session, workspace, "C1")
        channel.collecting = True
        for index in range(100):
            author = "old" if index < 50 else "new"
            record_message(
                session, channel, f"id{index}", author, f"msg {index:04d}", start + timedelta(minutes=index)
            )
        scope = Scope(workspace.id, channel.id)

    with Session(engine) as session:
        # 8 characters a message: 30 of them fit in 240 characters, the newest 30.
        corpus = load_scope_corpus(session, scope, min_messages=10, holdout_fraction=0.2, max_chars=240)
        everything = load_scope_corpus(session, scope, min_messages=10, holdout_fraction=0.2)
    kept = [*corpus.train, *corpus.holdout]
    assert kept == [f"msg {index:04d}" for index in range(70, 100)]
    assert len(everything.train) + len(everything.holdout) == 100
    # Only the authors of the kept messages are in the model.
    assert len(corpus.authors) == 1


@SQLITE_ONLY
def test_import_is_idempotent_turns_collection_on_and_skips_opted_out_authors(engine: Engine) -> None:
    log = "\n".join(
        [
            "[09:14] <alice> hello",
            "=== bob has joined #ubuntu",
            "[09:15] <bob> hi alice",
            "[09:16] <alice> hello",  # the same text again is another message
            "[09:17] <carol> bye",
        ]
    )
    corpus = parse_corpus(log, "irc")
    kwargs = {"platform": "console", "workspace": "W", "channel": "C", "source_name": "chat.log"}
    first = import_corpus(engine, corpus, **kwargs)
    assert (first.messages, first.added, first.already_stored, first.opted_out) == (4, 4, 0, 0)
    again = import_corpus(engine, corpus, **kwargs)
    assert (again.added, again.already_stored) == (0, 4)

    with Session(engine) as session, session.begin():
        channel = session.scalars(select(Channel)).one()
        assert channel.collecting and channel.collection_enabled_by == "chatsmith import"
        authors = list(session.scalars(select(Message.author_id).order_by(Message.created_at)))
        assert authors == ["alice", "bob", "alice", "carol"]
        forget_user(session, channel.workspace_id, "carol")

    grown = parse_corpus(log + "\n[09:18] <carol> back again\n[09:19] <dave> new here", "irc")
    third = import_corpus(engine, grown, **kwargs)
    assert (third.added, third.already_stored, third.opted_out) == (1, 3, 2)
    with Session(engine) as session:
        assert session.scalar(select(func.count(Message.id))) == 4  # carol forgotten, dave added


@SQLITE_ONLY
def test_scope_corpus_leaves_out_messages_with_a_slur_as_the_base_models_does(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    """One corpus policy: what `chatsmith train --drop-slurs` leaves out of the base model, a job leaves
    out of every scope's model, whole messages, before the minimum is counted."""
    from tests.bot.test_output_filter import SLUR_LINE

    start = datetime(2025, 1, 1, tzinfo=UTC)
    texts = [f"plain message {index}" for index in range(12)] + [SLUR_LINE, SLUR_LINE.upper()]
    with Session(engine) as session, session.begin():
        workspace = get_or_create_workspace(session, "discord", "G1")
        channel = get_or_create_channel(session, workspace, "C1")
        channel.collecting = True
        for index, text in enumerate(texts):
            author = "carol" if text.lower() == SLUR_LINE else "alice"
            record_message(session, channel, f"id{index}", author, text, start + timedelta(minutes=index))
        scope = Scope(workspace.id, channel.id)

    caplog.set_level("INFO", logger="trainer.corpus")
    with Session(engine) as session:
        corpus = load_scope_corpus(session, scope, min_messages=10, holdout_fraction=0.2)
    assert corpus.train + corpus.holdout == texts[:12]
    assert corpus.authors == {"alice"}  # nothing of carol's was learned, so no model records her
    # Said in the log by count only, never the words.
    assert "left out 2 messages that hold a slur" in caplog.text
    assert SLUR_LINE.split()[3] not in caplog.text.lower()
    with Session(engine) as session, pytest.raises(CorpusTooSmall, match="has 12 trainable messages"):
        load_scope_corpus(session, scope, min_messages=13, holdout_fraction=0.2)


def test_local_store_publishes_by_rename_and_deletes(tmp_path: Path) -> None:
    store = LocalModelStore(tmp_path / "models")
    staging = store.new_staging_dir("job-7")
    (staging / "bundle").mkdir()
    (staging / "bundle" / "bundle.json").write_text("{}")
    location = store.publish(staging / "bundle", "3/9", 2)
    assert location == str(tmp_path / "models" / "workspace-3" / "channel-9" / "model-v2")
    assert store.location_for("3", 1) == str(tmp_path / "models" / "workspace-3" / "model-v1")
    assert store.exists(location) and (Path(location) / "bundle.json").exists()
    assert not (staging / "bundle").exists()
    store.discard_staging("job-7")
    assert not staging.exists()
    store.delete(location)
    assert not store.exists(location) and list(Path(location).parent.iterdir()) == []
    store.delete(location)  # already gone: nothing happens


def test_base_model_is_configured_packaged_or_none(tmp_path: Path) -> None:
    packaged = tmp_path / "packaged"
    assert find_base_model(None, packaged=packaged) is None
    packaged.mkdir()
    (packaged / "bundle.json").write_text("{}")
    assert find_base_model(None, packaged=packaged) == packaged
    assert find_base_model("none", packaged=packaged) is None
    assert find_base_model(tmp_path, packaged=packaged) == tmp_path
    with pytest.raises(
        TrainerError, match="base model .*missing does not exist; fix CHATSMITH_BASE_MODEL_PATH"
    ):
        find_base_model(tmp_path / "missing", packaged=packaged)


def test_trainer_config_rejects_bad_settings_in_one_line() -> None:
    with pytest.raises(TrainerError, match="CHATSMITH_TRAINER_SPEC has unknown field"):
        TrainerConfig(spec={"unitz": 3}).validate()
    with pytest.raises(TrainerError, match="CHATSMITH_TRAINER_SCHEDULE 'nightly' is not a crontab"):
        TrainerConfig(schedule="nightly").validate()
    with pytest.raises(TrainerError, match="must be more than twice the heartbeat"):
        TrainerConfig(heartbeat_seconds=10, stale_after_seconds=15).validate()
    config = TrainerConfig(train_config={"epochs": 2}, time_budget=30).validate()
    assert config.textgen_train_config().epochs == 2 and config.textgen_train_config().time_budget == 30


def test_jobs_stop_when_the_held_out_loss_levels_off_unless_the_settings_say_otherwise() -> None:
    # Checked every 10 s from the start: the budget is a ceiling, not what every job spends.
    default = TrainerConfig().textgen_train_config()
    assert (default.check_every, default.patience, default.min_improvement) == (10.0, 2, 0.005)
    # A few passes over the channel, the learning rate decaying over them (or over the budget).
    assert default.epochs == 3 and default.time_budget == 900
    chosen = TrainerConfig(
        train_config={"check_every": 10, "patience": 5, "epochs": 8}
    ).textgen_train_config()
    assert (chosen.check_every, chosen.patience, chosen.min_improvement, chosen.epochs) == (10, 5, 0.005, 8)


def test_gate_never_promotes_a_model_no_better_than_a_uniform_guess(tmp_path: Path) -> None:
    import numpy as np

    from textgen.bundle import save_bundle
    from textgen.model import build_model
    from textgen.spec import ModelSpec
    from textgen.tokenizers import ByteTokenizer
    from trainer.gate import judge_candidate

    spec = ModelSpec(units=8, embedding=4, seq_len=16)
    model = build_model(spec, ByteTokenizer().vocab_size)
    # Logits that bet everything on one byte: far worse than a uniform guess on any text.
    kernel, bias = model.get_layer("logits").get_weights()
    bias[:] = 0.0
    bias[ByteTokenizer().encode("~")[0]] = 30.0
    model.get_layer("logits").set_weights([np.zeros_like(kernel), bias])
    bundle = save_bundle(tmp_path / "noise", model, spec, ByteTokenizer())

    verdict = judge_candidate(bundle, {}, ["hello there", "how are you"], find_incumbent=lambda: None)

    assert not verdict.promote and verdict.metrics["gate"] == "rejected"
    assert "no better than a uniform guess" in verdict.summary


def test_gate_scores_with_numpy_and_reuses_the_loaded_parent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import textgen.bundle
    import textgen.model
    from db.serving import ServingModel
    from textgen.bundle import load_serving_bundle, save_bundle
    from textgen.model import build_model
    from textgen.spec import ModelSpec
    from textgen.tokenizers import ByteTokenizer
    from trainer.gate import judge_candidate

    spec = ModelSpec(units=8, embedding=4, seq_len=16)
    candidate = save_bundle(
        tmp_path / "candidate", build_model(spec, ByteTokenizer().vocab_size), spec, ByteTokenizer()
    )
    incumbent = save_bundle(
        tmp_path / "incumbent", build_model(spec, ByteTokenizer().vocab_size), spec, ByteTokenizer()
    )
    parent = load_serving_bundle(incumbent)

    def no_keras(*args: object, **kwargs: object) -> None:
        raise AssertionError("the gate built a Keras model")

    def no_second_load(path: Path) -> None:
        raise AssertionError(f"the gate loaded {path} again")

    monkeypatch.setattr(textgen.model, "build_model", no_keras)
    monkeypatch.setattr(textgen.bundle, "load_bundle", no_keras)
    real_read = textgen.bundle.read_manifest
    monkeypatch.setattr(
        textgen.bundle,
        "read_manifest",
        lambda path: no_second_load(path) if Path(path) == incumbent else real_read(path),
    )
    serving = ServingModel(incumbent, "workspace", version_id=1, version=1)

    verdict = judge_candidate(candidate, {}, ["hello there", "how are you"], lambda: serving, parent=parent)

    assert verdict.metrics["incumbent_nats_per_char"] is not None
    assert verdict.metrics["incumbent_version_id"] == 1
