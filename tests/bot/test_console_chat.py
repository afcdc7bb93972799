"""The command core through the console adapter: each test reads like a chat."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from pathlib import Path

from sqlalchemy import select

from bot.core import CommandCore, Reply, Request, Services
from bot.core.generation import GenerationPool
from bot.core.models import ModelCache
from bot.core.safety import EMPTY_GENERATION
from db.models import Message, TrainingJob, UserOptOut
from tests.bot.conftest import CHANNEL_LINES, Chat, make_settings
from tests.bot.helpers import answers
from tests.bot.test_core_units import MENTION_BOMB, FakeGenerator
from textgen.sampling import SamplingParams


def test_a_user_generates_with_the_base_model(chat: Chat) -> None:
    ann = chat.user("ann")
    answer = ann.say("/generate to be or not")
    assert answers(answer, "to be or not")
    assert ann.last_reply.model == "base model" and not ann.last_reply.ephemeral
    assert "Received length" in ann.say("/generate hi length:100000")


def test_admin_commands_are_refused_to_others(chat: Chat) -> None:
    ann = chat.user("ann")
    for line in ("/train", "/collect on", "/models", "/rollback"):
        assert "is for admins" in ann.say(line), line
    assert "Unknown command `dance`" in ann.say("/dance")
    assert "• `generate [prompt] [length:N] [temperature:T] [as:@member]`" in ann.say("/help")


def test_collection_training_request_and_status(chat: Chat) -> None:
    admin, ann = chat.user("root", admin=True), chat.user("ann")
    ann.say("said before collection was on")
    assert "Nothing to train on" in admin.say("/train")
    assert "Collection is on in #general" in admin.say("/collect on")
    for line in CHANNEL_LINES[:6]:
        ann.say(line)
    ann.say("/generate not collected, a command")
    with chat.services.sessions() as session:
        texts = list(session.scalars(select(Message.text).order_by(Message.id)))
    assert texts == CHANNEL_LINES[:6]

    answer = admin.say("/train")
    assert "Training queued for #general on 6 messages (position 1 in the queue)" in answer
    assert "already position 1" in admin.say("/train")
    assert "Backfill is not available here" in admin.say("/train backfill:10")
    status = admin.say("/status")
    assert "the base model answers" in status
    assert "Collection in #general: on (6 messages kept" in status
    assert "Training of #general: queued, position 1." in status
    assert "Training queued for this workspace" in admin.say("/train workspace")
    with chat.services.sessions() as session:
        assert len(session.scalars(select(TrainingJob)).all()) == 2

    assert "Collection is off" in admin.say("/collect off")
    ann.say("after collection was turned off")
    with chat.services.sessions() as session:
        assert len(session.scalars(select(Message)).all()) == 6


def test_forget_me_deletes_and_opts_out(chat: Chat) -> None:
    admin, ann, bob = chat.user("root", admin=True), chat.user("ann"), chat.user("bob")
    admin.say("/collect on")
    for i in range(3):
        ann.say(f"ann says {i}")
    bob.say("bob says hi")
    assert "Deleted 3 of your messages" in ann.say("/forget-me")
    ann.say("ann again, after forgetting")
    with chat.services.sessions() as session:
        assert list(session.scalars(select(Message.author_id))) == ["bob"]
        assert [o.user_id for o in session.scalars(select(UserOptOut))] == ["ann"]
    assert "Deleted 0 of your messages" in ann.say("/forget-me")


def test_stats_sends_a_png(chat: Chat) -> None:
    admin = chat.user("root", admin=True)
    admin.say("/collect on")
    admin.say("a message")
    answer = admin.say("/stats")
    assert "#general: base model" in answer and "1 messages collected" in answer
    reply = admin.last_reply
    assert reply.file.startswith(b"\x89PNG") and reply.filename == "chatsmith-stats.png"
    assert (chat.files_dir / "chatsmith-stats.png").read_bytes() == reply.file


def test_cooldown_says_how_long_to_wait(services: Services, tmp_path: Path) -> None:
    from dataclasses import replace

    from bot.core.cooldowns import CooldownRule

    services.config = replace(services.config, cooldowns={"generate": CooldownRule(per_user=30)})
    chat = Chat(services, tmp_path)
    try:
        ann = chat.user("ann")
        ann.say("/generate hi")
        assert "Slow down: try `generate` again in 30 s." in ann.say("/generate hi")
        assert ann.last_reply.ephemeral
        assert answers(chat.user("bob").say("/generate hi"), "hi")
    finally:
        chat.close()


def _fake_model_services(services: Services, text: str) -> Services:
    generator = FakeGenerator("fake", text=text)
    models = ModelCache(loader=lambda path: generator)  # type: ignore[arg-type,return-value]
    return Services(services.engine, services.config, models=models, generation=GenerationPool(models))


class _Samples:
    """A model whose samples are `texts`, one per call, in turn; it counts the calls."""

    nbytes = 100

    def __init__(self, *texts: str) -> None:
        self.texts = list(texts)
        self.calls = 0

    def generate_many(self, prompts: list[str], params: list, contexts: list | None = None) -> list[str]:
        self.calls += 1
        return [self.texts[min(self.calls, len(self.texts)) - 1] for _ in prompts]


def _generate_with(services: Services, model: _Samples, prompt: str = "") -> Reply:
    models = ModelCache(loader=lambda path: model)  # type: ignore[arg-type,return-value]
    fake = Services(services.engine, services.config, models=models, generation=GenerationPool(models))
    try:
        request = Request("discord", "g1", "c1", "u1", "generate", {"prompt": prompt} if prompt else {})
        return asyncio.run(CommandCore(fake).handle(request))
    finally:
        fake.generation.close()


def test_empty_generation_gets_a_friendly_message_after_every_attempt_was_blank(services: Services) -> None:
    from bot.core.output_filter import MAX_ATTEMPTS

    model = _Samples("   ")
    assert _generate_with(services, model).text == EMPTY_GENERATION
    assert model.calls == MAX_ATTEMPTS


def test_a_blank_sample_is_sampled_again_rather_than_answered_with_nothing(services: Services) -> None:
    # A reply cut at its length while the model wrote only spaces: the next sample has words.
    model = _Samples(" \n  ", " again, with words")
    assert _generate_with(services, model, "once more").text.startswith("once more again, with words")
    assert model.calls == 2


def test_generate_answers_busy_at_once_when_the_queue_is_full(services: Services) -> None:
    import threading

    release = threading.Event()

    class Stuck(FakeGenerator):
        def generate_many(
            self, prompts: list[str], params: list[SamplingParams], contexts: object = None
        ) -> list[str]:
            release.wait(10)
            return super().generate_many(prompts, params)

    models = ModelCache(loader=lambda path: Stuck("stuck"))  # type: ignore[arg-type,return-value]
    pool = GenerationPool(models, workers=1, max_queued=1)
    busy = Services(services.engine, services.config, models=models, generation=pool)
    core = CommandCore(busy)

    async def two_at_once() -> tuple[Reply, Reply]:
        first = asyncio.create_task(core.handle(Request("discord", "g1", "c1", "u1", "generate")))
        # The first request holds the only place in the queue (and never hangs the test if it fails).
        waited = 0.0
        while pool.outstanding == 0 and not first.done():
            assert waited < 20, "the first request never reached the generation queue"
            await asyncio.sleep(0.01)
            waited += 0.01
        assert not first.done(), first.result()
        second = await core.handle(Request("discord", "g1", "c2", "u2", "generate"))
        release.set()
        return await first, second

    try:
        first, second = asyncio.run(two_at_once())
    finally:
        release.set()
        pool.close()
    assert second.text == "I'm busy right now, try again in a moment." and second.ephemeral
    assert first.text.strip() == "and more"


def test_mention_bomb_cannot_ping_on_any_platform(services: Services) -> None:
    fake = _fake_model_services(services, " " + MENTION_BOMB)
    core = CommandCore(fake)

    async def ask(platform: str) -> str:
        request = Request(platform, "g1", "c1", "u1", "generate", {"prompt": MENTION_BOMB})  # type: ignore[arg-type]
        return (await core.handle(request)).text

    discord_text = asyncio.run(ask("discord"))
    assert "@everyone" not in discord_text and "@here" not in discord_text and "<@" not in discord_text
    slack_text = asyncio.run(ask("slack"))
    for markup in ("<!everyone>", "<!here>", "<!channel>", "<@U", "<"):
        assert markup not in slack_text
    fake.generation.close()


def test_console_command_on_a_fresh_data_dir(tmp_path: Path, base_bundle: Path) -> None:
    env = {
        **os.environ,
        "CHATSMITH_DATA_DIR": str(tmp_path / "fresh"),
        "CHATSMITH_BASE_MODEL_PATH": str(base_bundle),
    }
    script = "/help\n/collect on\nhello there\n/status\n/generate once upon a time length:10\n/train\n"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "chatsmith.cli",
            "console",
            "--workspace",
            "W",
            "--channel",
            "C",
            "--user",
            "U",
            "--admin",
        ],
        input=script,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Commands:" in out and "Collection is on in #C" in out
    assert "Collection in #C: on (1 messages kept" in out
    assert "once upon a time" in out
    # One message is far below the trainer's default minimum: train says so instead of queueing.
    assert "#C has 1 messages to train on; the trainer needs at least 200, so 199 more" in out
    assert (tmp_path / "fresh" / "chatsmith.db").exists()


def test_console_refuses_an_out_of_date_database(tmp_path: Path, base_bundle: Path) -> None:
    from chatsmith.wiring import bot_services
    from db.engine import create_database_engine
    from db.errors import SchemaOutOfDate
    from db.schema import upgrade

    settings = make_settings(tmp_path / "old", base_bundle)
    engine = create_database_engine(settings.effective_database_url)
    upgrade(engine, "0001")
    engine.dispose()
    try:
        bot_services(settings, migrate_new_database=True)
    except SchemaOutOfDate as error:
        assert "chatsmith db upgrade" in str(error)
    else:
        raise AssertionError("an out-of-date database was accepted")


def run_trainer_once() -> None:
    """The real trainer, in-process: `chatsmith trainer --once` (settings come from the environment)."""
    from chatsmith.cli import main

    assert main(["trainer", "--once"]) == 0


def test_trained_model_answers_the_next_generate(chat: Chat) -> None:
    admin, ann = chat.user("root", admin=True), chat.user("ann")
    admin.say("/collect on")
    for line in CHANNEL_LINES:
        ann.say(line)
    assert "Training queued for #general" in admin.say("/train")
    run_trainer_once()
    status = admin.say("/status")
    assert "In #general the channel model v1 answers" in status, status
    assert "Last training of #general: promoted: " in status, status
    ann.say("/generate the cat")
    assert ann.last_reply.model == "channel model v1"
    assert any("channel-" in str(path) for path in chat.services.models.loaded_paths())
    assert "v1 active" in admin.say("/models")
    assert "no earlier model version" in admin.say("/rollback")


def test_replies_are_masked_on_the_console(chat: Chat) -> None:
    from tests.bot.test_discord_adapter import MASKED_PROMPT, UNMASKED_PROMPT

    assert chat.user("ann").say(f"/generate {UNMASKED_PROMPT}").startswith(MASKED_PROMPT)


def test_a_private_channel_never_feeds_the_workspace_model_unless_shared(chat: Chat) -> None:
    from db.messages import corpus_for_scope
    from db.models import Channel
    from db.scopes import Scope

    def command(channel: str, line: str, *, private: bool) -> str:
        request = Request(
            platform="console",
            workspace="team",
            channel=channel,
            user="root",
            command="collect",
            args={"state": line},
            permissions=frozenset({"administrator"}),
            channel_private=private,
            channel_name=channel,
        )
        return chat.runner.run(chat.core.handle(request)).text

    assert "is private: its messages train only its own model" in command("secret", "on", private=True)
    assert "is private" not in command("general", "on", private=False)
    chat.user("ann", channel="secret").say("whispered in the private channel")
    chat.user("bob", channel="general").say("said in the open")

    def workspace_corpus() -> list[str]:
        with chat.services.sessions() as session:
            workspace_id = session.scalars(select(Channel.workspace_id)).first()
            assert workspace_id is not None
            return corpus_for_scope(session, Scope(workspace_id))

    assert workspace_corpus() == ["said in the open"]
    assert "trains the workspace model too" in command("secret", "share", private=True)
    assert workspace_corpus() == ["whispered in the private channel", "said in the open"]
    assert "no longer trains the workspace model" in command("secret", "unshare", private=True)
    assert workspace_corpus() == ["said in the open"]


def test_train_checks_the_trainers_minimum_first(chat: Chat) -> None:
    admin, ann = chat.user("root", admin=True), chat.user("ann")
    admin.say("/collect on")
    for line in CHANNEL_LINES[:3]:
        ann.say(line)
    answer = admin.say("/train")
    assert "#general has 3 messages to train on; the trainer needs at least 5, so 2 more" in answer
    assert "This workspace has 3 messages" in admin.say("/train workspace")
    with chat.services.sessions() as session:
        assert session.scalars(select(TrainingJob)).all() == []
    for line in CHANNEL_LINES[3:5]:
        ann.say(line)
    assert "Training queued for #general on 5 messages" in admin.say("/train")


def test_my_data_is_a_private_file_of_what_was_kept(chat: Chat) -> None:
    import json

    admin, ann, bob = chat.user("root", admin=True), chat.user("ann"), chat.user("bob")
    admin.say("/collect on")
    ann.say("ann's first words")
    ann.say("ann's second words")
    bob.say("bob's words")

    answer = ann.say("/my-data")
    reply = ann.last_reply
    # Dated, so that a second export never overwrites the first.
    assert reply.ephemeral and re.fullmatch(r"chatsmith-my-data-\d{8}-\d{6}\.json", reply.filename or "")
    assert "2 message(s)" in answer
    data = json.loads(reply.file)
    assert [m["text"] for m in data["messages"]] == ["ann's first words", "ann's second words"]
    assert {m["channel"] for m in data["messages"]} == {"general"} and data["user_id"] == "ann"
    assert data["opted_out_at"] is None

    ann.say("/forget-me")
    ann.say("/my-data")
    after = json.loads(ann.last_reply.file)
    assert after["messages"] == [] and after["opted_out_at"] is not None


def test_backfill_keeps_nothing_past_the_retention_limit(services: Services) -> None:
    from dataclasses import replace
    from datetime import timedelta

    from bot.core.collection import record_history
    from bot.core.places import ensure_place
    from bot.core.request import HistoryMessage
    from db.models import utcnow

    services.config = replace(services.config, retention_days=30)
    request = Request(
        platform="console",
        workspace="team",
        channel="general",
        user="root",
        command="collect",
        args={"state": "on"},
        permissions=frozenset({"administrator"}),
    )
    runner = asyncio.Runner()
    try:
        runner.run(CommandCore(services).handle(request))
    finally:
        runner.close()
    place = ensure_place(services, request)
    now = utcnow()
    kept = record_history(
        services,
        place.channel_id,
        [
            HistoryMessage("old", "ann", "said two months ago", now - timedelta(days=60)),
            HistoryMessage("new", "ann", "said last week", now - timedelta(days=7)),
        ],
    )
    assert kept == 1
    with services.sessions() as session:
        assert list(session.scalars(select(Message.text))) == ["said last week"]
