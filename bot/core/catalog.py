"""Every command chatsmith knows, each declared once: this list is what every platform offers.

Adding a command is one `CommandSpec` here and one handler in `bot.core.handlers`; dispatch
(`bot.core.commands`), typed text (`bot.core.parsing`), `help`, the console, the Discord command tree
(`bot.discord_commands`) and Slack's slash commands read this list, and `tests/bot/test_command_catalog.py`
fails when a platform offers a command not declared here or lacks one that is.
"""

from __future__ import annotations

from bot.core.command_spec import CommandSpec, Option
from bot.core.handlers import consent, generate, models, status, train
from bot.core.handlers.filter import filter_command
from bot.core.handlers.imitate import imitate_me
from bot.core.handlers.my_data import my_data
from bot.core.request import Reply, Request
from bot.core.safety import safe_reply
from bot.core.services import Services
from bot.defaults import COOLDOWNS

# Discord's limit on command and option descriptions, the shortest of the platforms'.
MENU_DESCRIPTION_MAX = 100


async def help_command(services: Services, request: Request) -> Reply:
    """`help`: every command with its usage, to the caller only."""
    return safe_reply(request, help_text(), ephemeral=True)


def _scope(description: str) -> Option:
    return Option("scope", description, choices=("channel", "workspace"), default="channel", positional=True)


DECLARED: tuple[CommandSpec, ...] = (
    CommandSpec(
        "generate",
        generate.generate,
        cooldown=COOLDOWNS["generate"],
        usage="generate [prompt] [length:N] [temperature:T] [as:@member]",
        summary="write something in this channel's voice (without a prompt: the conversation's next "
        "message; as:@member: like a member who turned on imitate-me)",
        description="Write something in this channel's voice.",
        public=True,
        options=(
            Option(
                "prompt",
                "text for the model to continue (none: the conversation's next message)",
                default="",
                positional=True,
                rest=True,
            ),
            Option("length", "how many tokens to write", kind="whole", low=1, high=2000),
            Option("temperature", "0 is predictable, higher is wilder", kind="number", low=0.0, high=2.0),
            Option("as", "write like this member (they must have run /imitate-me on)", kind="member"),
        ),
        aliases=("gen",),
        own_slash=True,
    ),
    CommandSpec(
        "imitate-me",
        imitate_me,
        cooldown=COOLDOWNS["imitate-me"],
        usage="imitate-me on|off",
        summary="let `generate as:@you` write like you in this workspace, or stop it",
        description="Let /generate write like you in this server, or stop it.",
        options=(
            Option(
                "state",
                "on: /generate as:@you may write like you here; off: nobody can",
                choices=("on", "off"),
                positional=True,
            ),
        ),
        aliases=("imitate", "imitate_me"),
    ),
    CommandSpec(
        "status",
        status.status,
        cooldown=COOLDOWNS["status"],
        usage="status",
        summary="which model answers here, its scores, and training progress",
        description="Which model answers here, its scores, and training progress.",
    ),
    CommandSpec(
        "stats",
        status.stats,
        cooldown=COOLDOWNS["stats"],
        usage="stats",
        summary="chart of the model's loss per epoch and the messages collected",
        description="Chart of the model's loss per epoch and of the messages collected.",
        public=True,
    ),
    CommandSpec(
        "forget-me",
        consent.forget_me,
        cooldown=COOLDOWNS["forget-me"],
        usage="forget-me",
        summary="delete your messages in this whole workspace, stop collecting yours, and withdraw every "
        "model that learned from them (retraining without them is queued); it cannot be undone",
        description="Delete your messages in this whole server, stop collecting yours, withdraw models "
        "that saw them.",
        aliases=("forget", "forgetme", "forget_me"),
    ),
    CommandSpec(
        "my-data",
        my_data,
        cooldown=COOLDOWNS["my-data"],
        usage="my-data",
        summary="get, privately, a file of everything collected from you here",
        description="Get, privately, a file of everything collected from you in this server.",
        aliases=("mydata", "my_data"),
    ),
    CommandSpec(
        "help",
        help_command,
        cooldown=COOLDOWNS["help"],
        usage="help",
        summary="this list",
        description="List chatsmith's commands.",
    ),
    CommandSpec(
        "train",
        train.train,
        cooldown=COOLDOWNS["train"],
        usage="train [channel|workspace] [backfill:N]",
        summary="queue training; backfill first reads up to N past messages",
        description="Queue training of the model (admins).",
        admin=True,
        options=(
            _scope("train this channel's model or the whole server's"),
            Option(
                "backfill",
                "first read up to this many past messages of the channel",
                kind="whole",
                low=0,
                high=100000,
                default=0,
            ),
        ),
        own_slash=True,
    ),
    CommandSpec(
        "collect",
        consent.collect,
        cooldown=COOLDOWNS["collect"],
        usage="collect on|off|share|unshare",
        summary="opt this channel in or out of collection; share lets a private channel train the "
        "workspace model",
        description="Opt this channel in or out of collection (admins).",
        admin=True,
        options=(
            Option(
                "state",
                "on/off: keep messages here for training or stop; share/unshare: also train the "
                "server's model or not",
                choices=("on", "off", "share", "unshare"),
                positional=True,
            ),
        ),
    ),
    CommandSpec(
        "models",
        models.models,
        cooldown=COOLDOWNS["models"],
        usage="models [channel|workspace]",
        summary="list model versions and their scores",
        description="List model versions and their scores (admins).",
        admin=True,
        options=(_scope("this channel's models or the whole server's"),),
    ),
    CommandSpec(
        "rollback",
        models.rollback,
        cooldown=COOLDOWNS["rollback"],
        usage="rollback [channel|workspace]",
        summary="serve the previous good model version again",
        description="Serve the previous good model version again (admins).",
        admin=True,
        options=(_scope("roll back this channel's model or the whole server's"),),
    ),
    CommandSpec(
        "filter",
        filter_command,
        cooldown=COOLDOWNS["filter"],
        usage="filter [off|mask|block] | filter add|remove WORD ...",
        summary="what replies may say here: the profanity policy and words of your own",
        description="What replies may say here: profanity policy and words of your own (admins).",
        admin=True,
        options=(
            Option(
                "action",
                "show the filter, set the profanity policy, or add or remove words of your own",
                choices=("show", "off", "mask", "block", "add", "remove"),
                default="show",
                positional=True,
            ),
            Option(
                "words",
                "the words to add or remove, separated by spaces",
                default="",
                positional=True,
                rest=True,
            ),
        ),
    ),
)

# The declarations by name, in the order `help` lists them.
COMMANDS: dict[str, CommandSpec] = {spec.name: spec for spec in DECLARED}
ADMIN_COMMANDS = frozenset(spec.name for spec in DECLARED if spec.admin)
PUBLIC_COMMANDS = frozenset(spec.name for spec in DECLARED if spec.public)
COOLDOWN_COMMANDS = frozenset(spec.name for spec in DECLARED if any(spec.cooldown))
ALIASES: dict[str, str] = {alias: spec.name for spec in DECLARED for alias in spec.aliases}


def resolve(name: str) -> str:
    """A typed command name as declared: lower case, aliases resolved (unknown names stay as typed)."""
    name = name.lower()
    return ALIASES.get(name, name)


def help_text() -> str:
    """The `help` answer: every command with its usage and summary."""
    return "\n".join(["Commands:", *(spec.help_line() for spec in DECLARED)])


def declaration_problems(specs: tuple[CommandSpec, ...] = DECLARED) -> list[str]:
    """What is wrong with a list of declarations (empty when nothing is): clashing names or aliases,
    names platforms refuse, a `rest` option that is not the last one typed text fills."""
    problems: list[str] = []
    seen: set[str] = set()
    for spec in specs:
        for name in (spec.name, *spec.aliases):
            if name in seen:
                problems.append(f"`{name}` names two commands")
            seen.add(name)
            if name != name.lower() or not name or " " in name or name.startswith("/"):
                problems.append(f"`{name}`: command names are lower case, one word, no leading slash")
        if len(spec.description) > MENU_DESCRIPTION_MAX:
            problems.append(f"`{spec.name}`: description over {MENU_DESCRIPTION_MAX} characters")
        positional = [option for option in spec.options if option.positional]
        if any(option.rest for option in positional[:-1]):
            problems.append(f"`{spec.name}`: only the last positional option may take the rest")
        for option in spec.options:
            if len(option.description) > MENU_DESCRIPTION_MAX:
                problems.append(f"`{spec.name} {option.name}`: description over {MENU_DESCRIPTION_MAX}")
            if option.rest and not option.positional:
                problems.append(f"`{spec.name} {option.name}`: a rest option is positional")
    return problems
