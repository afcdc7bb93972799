"""Every command is declared once (`bot.core.catalog`); each platform offers exactly the declared ones.

The Discord and Slack scenarios that send every declared command through the fakes are in
`test_discord_adapter.py` and `test_slack_adapter.py`.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path
from typing import Any

import discord
import pytest
import yaml

from bot.console import ConsoleChat
from bot.core import CommandCore, Reply, Request, Services
from bot.core.catalog import (
    ADMIN_COMMANDS,
    ALIASES,
    COMMANDS,
    COOLDOWN_COMMANDS,
    DECLARED,
    PUBLIC_COMMANDS,
    declaration_problems,
    help_text,
)
from bot.core.command_spec import CommandSpec, Option
from bot.core.cooldowns import CooldownRule
from bot.core.parsing import command_for_slash, parse_command_text
from bot.discord_bot import ChatsmithDiscordBot
from bot.slack_app import SLASH_COMMANDS
from chatsmith.settings import Settings
from chatsmith.wiring import bot_config
from tests.bot.helpers import record_commands

OPTION_TYPES = {"text": 3, "whole": 4, "member": 6, "number": 10}
MANIFEST = Path(__file__).parents[2] / "bot" / "slack_manifest.yaml"


class _Core:
    """Enough of a command core to build the Discord client's tree without a database."""

    config = None


def discord_tree_payload() -> dict[str, dict[str, Any]]:
    """The Discord bot's global commands, by name, exactly as a sync would send them."""
    bot = ChatsmithDiscordBot(_Core())  # type: ignore[arg-type]
    return {command.name: command.to_dict(bot.tree) for command in bot.tree.get_commands()}


def test_the_declarations_hold_together() -> None:
    assert declaration_problems() == []
    assert list(COMMANDS) == [spec.name for spec in DECLARED]
    handler = DECLARED[0].handler
    clash = CommandSpec(
        "forget", handler, usage="forget", summary="a second forget", description="Again.", cooldown=(1, 0)
    )
    bad_rest = CommandSpec(
        "x",
        handler,
        usage="x [words] [more]",
        summary="a prompt before another positional option",
        description="X.",
        cooldown=(1, 0),
        options=(Option("words", "a", positional=True, rest=True), Option("more", "b", positional=True)),
    )
    problems = declaration_problems((*DECLARED, clash, bad_rest))
    assert "`forget` names two commands" in problems
    assert "`x`: only the last positional option may take the rest" in problems


def test_help_lists_every_declared_command_truthfully() -> None:
    text = help_text()
    for spec in DECLARED:
        assert f"• `{spec.usage}`: {spec.summary}" in text, spec.name
    assert "`filter [off|mask|block]" in text and "`imitate-me on|off`" in text
    forget = next(line for line in text.splitlines() if line.startswith("• `forget-me`"))
    # It deletes across the whole workspace and takes the member out of the models, not only "here".
    assert "whole workspace" in forget and "withdraw every model that learned from them" in forget
    assert sum(line.endswith("(admins)") for line in text.splitlines()) == len(ADMIN_COMMANDS)


def test_the_discord_tree_is_the_declarations() -> None:
    tree = discord_tree_payload()
    assert set(tree) == set(COMMANDS)
    for name, command in tree.items():
        spec = COMMANDS[name]
        assert command["description"] == spec.description
        options = {option["name"]: option for option in command.get("options", [])}
        assert list(options) == [option.name for option in spec.options], name
        for declared in spec.options:
            offered = options[declared.name]
            assert offered["description"] == declared.description
            assert offered["type"] == OPTION_TYPES[declared.kind]
            assert [c["value"] for c in offered.get("choices", [])] == list(declared.choices)
            assert (offered.get("min_value"), offered.get("max_value")) == (declared.low, declared.high)
            assert not offered["required"]
    assert tree["generate"]["options"][3]["name"] == "as"  # a Python keyword, renamed back for Discord


def test_slack_offers_every_declared_command_and_no_other() -> None:
    own = [name.lstrip("/") for name in SLASH_COMMANDS if name != "/chatsmith"]
    assert own == [spec.name for spec in DECLARED if spec.own_slash] == ["generate", "train"]
    for name in [*COMMANDS, *ALIASES]:
        assert command_for_slash("/chatsmith", f"{name} ")[0] == (ALIASES.get(name) or name)
    assert command_for_slash("/train", "workspace") == ("train", {"scope": "workspace"})
    manifest = yaml.safe_load(MANIFEST.read_text())
    listed = {c["command"]: c["description"] for c in manifest["features"]["slash_commands"]}
    assert sorted(listed) == sorted(SLASH_COMMANDS)
    # `/chatsmith` promises every command without naming them, so a new one needs no manifest change.
    assert "any chatsmith command" in listed["/chatsmith"].lower()


def test_the_console_reaches_every_declared_command(services: Services, tmp_path: Path) -> None:
    core = CommandCore(services)
    ran = record_commands(core)
    console = ConsoleChat(core, "team", "general", "ann", admin=True, files_dir=tmp_path)

    async def scenario() -> list[list[str]]:
        lines = [f"/{name}" for name in COMMANDS] + [f"/{alias}" for alias in ALIASES] + ["/dance"]
        return [await console.say(line) for line in lines]

    printed = asyncio.run(scenario())
    assert ran == list(COMMANDS) + list(ALIASES.values())
    assert printed[-1] == ["Unknown command `dance`. Try `help` for the list."]


def test_typed_text_fills_the_declared_options() -> None:
    assert parse_command_text("filter add darn heck") == ("filter", {"action": "add", "words": "darn heck"})
    assert parse_command_text("filter") == ("filter", {})
    assert parse_command_text("imitate-me on") == ("imitate-me", {"state": "on"})
    assert parse_command_text("models workspace extra") == ("models", {"scope": "workspace"})
    assert parse_command_text("train scope:workspace channel") == ("train", {"scope": "workspace"})
    # A prompt is never an option of its own: `prompt:` and unknown options stay words of the prompt.
    assert parse_command_text("gen prompt:x as:@ann y") == (
        "generate",
        {"as": "@ann", "prompt": "prompt:x y"},
    )
    assert parse_command_text("dance length:3") == ("dance", {})


def test_only_public_commands_answer_the_whole_channel(services: Services) -> None:
    core = CommandCore(services)

    async def loud(services: Services, request: Request) -> Reply:
        return Reply("for everyone")

    core._handlers = {name: loud for name in COMMANDS}

    async def scenario() -> dict[str, bool]:
        answers = {}
        for name in COMMANDS:
            request = Request(platform="console", workspace="w", channel="c", user="u", command=name)
            answers[name] = (await core.run(request)).ephemeral
        return answers

    private = asyncio.run(scenario())
    assert {name for name, ephemeral in private.items() if not ephemeral} == PUBLIC_COMMANDS
    assert {"generate", "stats"} == PUBLIC_COMMANDS


def test_cooldowns_are_configured_for_the_declared_commands(services: Services) -> None:
    assert set(bot_config(Settings(_env_file=None)).cooldowns) == COOLDOWN_COMMANDS  # type: ignore[call-arg]
    services.config = replace(services.config, cooldowns={"dance": CooldownRule(per_user=5)})
    with pytest.raises(ValueError, match="declared without one: dance"):
        CommandCore(services)


def test_a_discord_member_option_reaches_the_core_as_their_id() -> None:
    from bot.discord_commands import slash_command

    received: list[tuple[str, dict[str, Any]]] = []

    async def run(interaction: Any, command: str, args: dict[str, Any]) -> None:
        received.append((command, args))

    command = slash_command(COMMANDS["generate"], run)
    ann = discord.User(state=None, data={"id": "42", "username": "ann", "discriminator": "0", "avatar": None})  # type: ignore[arg-type,typeddict-item]
    asyncio.run(command.callback(None, prompt="hi", length=None, temperature=0.5, as_=ann))  # type: ignore[arg-type,call-arg]
    assert received == [("generate", {"prompt": "hi", "length": None, "temperature": 0.5, "as": "42"})]
