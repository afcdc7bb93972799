"""What a command asks and what the bot answers, the same on every platform."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

# A name of `db.platforms.PLATFORMS` ("discord", "slack", "console", ...).
Platform = str
ArgValue = str | int | float | bool

# Permission names a request may carry; adapters translate their platform's rights into these.
ADMINISTRATOR = "administrator"
MANAGE_SERVER = "manage_server"
ADMIN_PERMISSIONS = frozenset({ADMINISTRATOR, MANAGE_SERVER})


@dataclass(frozen=True)
class HistoryMessage:
    """A past message read from the platform's history API during a backfill.

    Attributes:
        message_id: The platform's id of the message.
        author_id: The platform's id of its author.
        text: Its text as the platform gave it.
        created_at: When it was posted (aware datetime).
        author_is_bot: Whether a bot wrote it (never trained on).
    """

    message_id: str
    author_id: str
    text: str
    created_at: datetime
    author_is_bot: bool = False


# An adapter's history reader: yields up to `limit` past messages of the request's channel, newest first.
HistoryReader = Callable[[int], AsyncIterator[HistoryMessage]]
# Shows the caller how a long command is going (Discord: edit the deferred reply; Slack: update a message).
ProgressReporter = Callable[[str], Awaitable[None]]


@dataclass(frozen=True)
class AdminPolicy:
    """Who may run admin commands besides holders of the platform's admin rights.

    Role names grant nothing: anyone allowed to create roles could make one with the configured name.

    Attributes:
        role_ids: Discord roles whose members count as admins, each as "<guild id>:<role id>", so a role
            counts only in its own server.
        user_ids: Platform user ids that count as admins.
    """

    role_ids: frozenset[str] = frozenset()
    user_ids: frozenset[str] = frozenset()

    def allows(
        self, permissions: frozenset[str], roles: tuple[str, ...], user: str, workspace: str = ""
    ) -> bool:
        """Deny by default: only an admin permission, a listed role of this workspace or a listed user says yes.

        Args:
            permissions: The caller's platform rights, as names.
            roles: Ids of the caller's roles in `workspace`.
            user: The caller's user id.
            workspace: The server the request comes from.
        """
        if permissions & ADMIN_PERMISSIONS:
            return True
        if workspace and any(f"{workspace}:{role}" in self.role_ids for role in roles):
            return True
        return bool(user) and user in self.user_ids


@dataclass(frozen=True)
class Request:
    """One command from a user.

    Attributes:
        platform: The platform's name in `db.platforms.PLATFORMS` ("discord", "slack", "console").
        workspace: The platform's id of the server/workspace (console: a name).
        channel: The platform's id of the channel.
        user: The platform's id of the caller.
        command: Command name, e.g. "generate" (see `bot.core.commands.COMMANDS`).
        args: Named arguments; values arrive typed (Discord) or as text (Slack, console) and are
            checked by the handler.
        permissions: Platform rights of the caller, as names (`ADMINISTRATOR`, `MANAGE_SERVER`); empty
            when the platform did not say, which means "not an admin".
        roles: Role ids of the caller in this workspace (Discord), for the configured admin roles.
        policy: Extra admins from configuration.
        workspace_name: Human name of the workspace, stored for `chatsmith` listings.
        channel_name: Human name of the channel, for replies.
        channel_private: Whether not everyone in the workspace can read the channel; None when the
            adapter did not ask or could not tell (the stored answer stands).
        channel_privacy_unknown: The adapter asked and the platform could not tell (the bot not in the
            channel, a rate limit): the channel counts as private (a new one is stored private) and
            `collect on` is refused until it can tell.
        history: Reads past messages of the channel for `train backfill:N`; None where the adapter cannot.
        progress: Reports progress of a long command; None to stay quiet.
    """

    platform: Platform
    workspace: str
    channel: str
    user: str
    command: str
    args: Mapping[str, ArgValue] = field(default_factory=dict)
    permissions: frozenset[str] = frozenset()
    roles: tuple[str, ...] = ()
    policy: AdminPolicy = AdminPolicy()
    workspace_name: str = ""
    channel_name: str = ""
    channel_private: bool | None = None
    channel_privacy_unknown: bool = False
    history: HistoryReader | None = None
    progress: ProgressReporter | None = None

    @property
    def is_admin(self) -> bool:
        """Whether the caller may run admin commands (unknown permission data means no)."""
        return self.policy.allows(self.permissions, self.roles, self.user, self.workspace)


@dataclass(frozen=True)
class Reply:
    """What the bot answers.

    Attributes:
        text: The message, already made safe for the platform (no pings, within its length limit).
        file: Optional attachment bytes (a PNG chart).
        filename: Name of the attachment.
        ephemeral: Only the caller sees it (where the platform can do that).
        model: Which model answered a `generate` ("channel v3", "workspace v1", "base"); not shown.
    """

    text: str
    file: bytes | None = None
    filename: str | None = None
    ephemeral: bool = False
    model: str | None = None


@dataclass(frozen=True)
class IncomingMessage:
    """A message seen in a channel, for collection.

    Attributes:
        platform, workspace, channel: Where it was posted (platform ids).
        message_id: The platform's id of the message.
        author_id: The platform's id of its author.
        text: Its text.
        created_at: When it was posted (aware datetime).
        author_is_bot: Whether a bot wrote it.
    """

    platform: Platform
    workspace: str
    channel: str
    message_id: str
    author_id: str
    text: str
    created_at: datetime
    author_is_bot: bool = False
    workspace_name: str = ""
    channel_name: str = ""
