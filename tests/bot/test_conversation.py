"""A reply without a prompt follows the conversation: the channel's last messages, consent respected."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from chatsmith.wiring import bot_services
from tests.bot.conftest import Chat, make_settings
from tests.shared_models import CALL_AND_RESPONSE_PAIRS as PAIRS
from tests.shared_models import CallAndResponse


@pytest.fixture
def chat(tmp_path: Path, call_and_response: CallAndResponse) -> Iterator[Chat]:
    services = bot_services(
        make_settings(tmp_path / "data", call_and_response.bundle, generate_temperature=0.3),
        migrate_new_database=True,
    )
    bot = Chat(services, tmp_path / "files")
    yield bot
    bot.close()
    services.close()


def test_generate_without_a_prompt_answers_the_last_message(chat: Chat) -> None:
    admin, ann = chat.user("admin", admin=True), chat.user("ann")
    admin.say("/collect on")
    for call, response in PAIRS:
        ann.say(call)
        replies = [admin.say("/generate") for _ in range(5)]
        assert sum(reply.strip() == response for reply in replies) >= 4, (call, replies)


def test_a_reply_names_a_member_the_conversation_has_not_seen_as_its_last_speaker(chat: Chat) -> None:
    """A member named "who" spoke long ago: the model's answer to "knock?" names them, so the reply names
    the member who knocked instead; once "who" is back in the conversation, the answer stands."""
    from bot.core.generation import LENGTH_MESSAGES

    admin, ann, who = chat.user("admin", admin=True), chat.user("ann"), chat.user("who")
    admin.say("/collect on")
    who.say("hello?")
    for _ in range(LENGTH_MESSAGES):
        admin.say("ping?")
    ann.say("knock?")
    replies = [admin.say("/generate") for _ in range(5)]
    assert sum(reply.strip() == "ann" for reply in replies) >= 4, replies
    who.say("hello?")
    ann.say("knock?")
    replies = [admin.say("/generate") for _ in range(5)]
    assert sum(reply.strip() == "who" for reply in replies) >= 4, replies


def test_an_opted_out_members_messages_are_not_context(chat: Chat) -> None:
    admin, ann, bob = chat.user("admin", admin=True), chat.user("ann"), chat.user("bob")
    admin.say("/collect on")
    bob.say("/forget-me")
    ann.say("knock?")
    bob.say("ping?")  # not collected, so never read as context
    replies = [admin.say("/generate") for _ in range(5)]
    assert sum(reply.strip() == "who" for reply in replies) >= 4, replies


def test_imitation_needs_the_members_consent_and_ends_at_once(chat: Chat) -> None:
    admin, ann, bob = chat.user("admin", admin=True), chat.user("ann"), chat.user("bob")
    admin.say("/collect on")
    bob.say("ping?")
    ann.say("knock?")
    assert "has not turned on imitation" in ann.say("/generate as:@bob")

    assert "Imitation is on" in bob.say("/imitate-me on")
    # As bob: after bob's own latest message, not the channel's.
    replies = [ann.say("/generate as:@bob") for _ in range(5)]
    assert sum(reply.strip() == "pong" for reply in replies) >= 4, replies
    assert "imitating" in ann.last_reply.model
    replies = [ann.say("/generate") for _ in range(5)]
    assert sum(reply.strip() == "who" for reply in replies) >= 4, replies

    assert "Imitation is off" in bob.say("/imitate-me off")
    assert "has not turned on imitation" in ann.say("/generate as:<@bob>")
    bob.say("/imitate-me on")
    bob.say("/forget-me")
    assert "has not turned on imitation" in ann.say("/generate as:@bob")
    assert "nothing to imitate" in bob.say("/imitate-me on")


def test_a_reply_never_repeats_a_message_it_just_read(services_for_echo: tuple) -> None:
    """The messages read as context are in no model's copy guard yet; they are guarded all the same."""
    from bot.core.output_filter import FALLBACK

    (chat,) = services_for_echo
    admin, ann = chat.user("admin", admin=True), chat.user("ann")
    admin.say("/collect on")
    ann.say("my card number is in the other tab so please do not read it out loud")
    assert admin.say("/generate") == FALLBACK
    assert "the model continues" in admin.say("/generate the model continues")


class _Echo:
    """Stands in for a model that repeats the last message of its context word for word."""

    nbytes = 100

    def generate_many(self, prompts: list[str], params: list, contexts: list | None = None) -> list[str]:
        return [context[-1] if context else " and more" for context in (contexts or [()] * len(prompts))]


@pytest.fixture
def services_for_echo(tmp_path: Path, base_bundle: Path) -> Iterator[tuple]:
    from bot.core import Services
    from bot.core.generation import GenerationPool
    from bot.core.models import ModelCache

    services = bot_services(make_settings(tmp_path / "data", base_bundle), migrate_new_database=True)
    models = ModelCache(loader=lambda path: _Echo())  # type: ignore[arg-type,return-value]
    echo = Services(services.engine, services.config, models=models, generation=GenerationPool(models))
    bot = Chat(echo, tmp_path / "files")
    yield (bot,)
    bot.close()
    echo.generation.close()
    services.close()
