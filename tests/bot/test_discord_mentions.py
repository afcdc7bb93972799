"""Discord: a message that mentions the bot, or replies to it, is answered in the conversation."""

from __future__ import annotations

from bot.core import Services
from chatsmith.settings import Settings
from tests.bot.helpers import eventually, run
from tests.bot.test_discord_adapter import NO_PINGS, running_bot


def test_a_mention_or_a_reply_to_the_bot_is_answered_and_other_messages_are_not(
    bot_settings: Settings, services: Services
) -> None:
    async def scenario() -> None:
        async with running_bot(bot_settings, services) as (fake, _):
            general, guild = fake.channel.id, fake.guild.id
            opt_in = await fake.send_interaction(guild, general, fake.bob.id, "collect", {"state": "on"})
            await opt_in.wait_for_followup(timeout=10)
            posts = "/channels/*/messages"

            await fake.dispatch_message_create(general, fake.alice.id, "just chatting, nobody asked the bot")
            mention = await fake.dispatch_message_create(
                general, fake.alice.id, f"<@{fake.bot.id}> what do you think?"
            )
            answer = await fake.wait_for_call("POST", posts, timeout=30)
            assert str(answer.json["message_reference"]["message_id"]) == mention["id"]
            assert answer.json["content"].strip()
            assert answer.json["allowed_mentions"] == {**NO_PINGS, "replied_user": False}

            earlier = fake.add_message(general, fake.bot.id, "an earlier reply of the bot")
            follow = await fake.dispatch_message_create(
                general,
                fake.alice.id,
                "really?",
                message_reference={"message_id": earlier["id"], "channel_id": general},
                referenced_message=earlier,
            )
            await eventually(lambda: len(fake.calls_to("POST", posts)) == 2, timeout=30, what="second answer")
            assert (
                str(fake.calls_to("POST", posts)[1].json["message_reference"]["message_id"]) == follow["id"]
            )

            await fake.dispatch_message_create(general, fake.alice.id, "another plain message")
            await fake.dispatch_message_create(general, fake.alice.id, "/generate typed as text")
            await eventually(lambda: len(fake.messages_in(general)) >= 5, what="messages stored")
            assert len(fake.calls_to("POST", posts)) == 2

    run(scenario)
