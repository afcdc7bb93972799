"""`generate`: write something in the channel's voice with the model that serves there."""

from __future__ import annotations

import logging

from bot.core.arguments import float_arg, int_arg
from bot.core.errors import GenerationBusy
from bot.core.generation import LENGTH_MESSAGES, reply_params
from bot.core.handlers.imitate import member_id
from bot.core.names import readdress
from bot.core.output_filter import FALLBACK, MAX_ATTEMPTS, PROMPT_REFUSED, Checked, OutputFilter
from bot.core.request import Reply, Request
from bot.core.safety import generated_or_friendly, safe_reply
from bot.core.services import Services
from bot.core.serving import read_or_default, serving_model
from db.filters import FilterSettings, filter_settings
from db.imitation import may_imitate
from db.messages import recent_messages_by, retention_cutoff, workspace_author_ids
from db.scopes import find_scope
from textgen.copyguard import build_copy_guard

log = logging.getLogger(__name__)

# Longest prompt fed to a model, in tokens: every prompt token is one decoding step. The prompt is cut to
# this many UTF-8 bytes, which bounds its tokens under every tokenizer (the byte tokenizer spends one per
# byte, so 500 emoji would otherwise cost 2,000 steps).
MAX_PROMPT_TOKENS = 500


def cap_prompt(prompt: str, max_tokens: int = MAX_PROMPT_TOKENS) -> str:
    """The prompt cut to at most `max_tokens` UTF-8 bytes, never through a character."""
    return prompt.encode("utf-8")[:max_tokens].decode("utf-8", errors="ignore")


# Messages of the channel a reply without a prompt follows (within `textgen.context`'s token bound).
# Measured on a channel the base model never saw (`python -m bench.context_length`, bench/RESULTS.md): one
# message gives all the gain that 2, 4 or 8 give, in held-out nats/char and in how well a classifier tells
# the replies from real messages; two are kept for channels whose messages are a word or two. Every
# token of context is a recurrent step of every reply after a new message.
CONTEXT_MESSAGES = 2


NO_MODEL_YET = "No model answers here yet: an admin can run `collect on`, let people talk, then `train`."
NOT_IMITABLE = "That member has not turned on imitation here (they can run `imitate-me on`)."


def conversation(
    services: Services, request: Request, author: str | None = None, count: int = CONTEXT_MESSAGES
) -> tuple[str, ...]:
    """The channel's last `count` messages that may be trained on (collected, no opted-out member, no
    command, within the retention limit), oldest first, only `author`'s when given; nothing for a channel
    the database does not know. Call it on the database threads."""
    return conversation_by(services, request, author, count)[0]


def conversation_by(
    services: Services, request: Request, author: str | None = None, count: int = CONTEXT_MESSAGES
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """`conversation`, and who wrote each of its messages: (texts, author ids)."""
    cutoff = retention_cutoff(services.config.retention_days)
    with services.sessions() as session:
        scope = find_scope(session, request.platform, request.workspace, request.channel)
        if scope is None or scope.channel_id is None:
            return (), ()
        pairs = recent_messages_by(session, scope, count, author_id=author, cutoff=cutoff)
    return tuple(text for _, text in pairs), tuple(author for author, _ in pairs)


def workspace_members(services: Services, request: Request) -> frozenset[str]:
    """The workspace's member ids, lowercase (`db.messages.workspace_author_ids`), kept a while
    (`Services.members`). Call it on the database threads."""

    def read() -> frozenset[str]:
        with services.sessions() as session:
            scope = find_scope(session, request.platform, request.workspace, None)
            return frozenset() if scope is None else workspace_author_ids(session, scope.workspace_id)

    return services.members.get((request.platform, request.workspace), read)


def imitable(services: Services, request: Request, member: str) -> bool:
    with services.sessions() as session:
        return may_imitate(session, request.platform, request.workspace, member)


def workspace_filter_settings(services: Services, request: Request) -> FilterSettings:
    """The request's workspace filter settings (defaults for a workspace the database does not know),
    read at most once per `bot.core.services.FILTER_SETTINGS_TTL_S` (`filter` puts a changed value in at once)."""

    def read() -> FilterSettings:
        with services.sessions() as session:
            return filter_settings(session, request.platform, request.workspace)

    return services.filter_settings.get((request.platform, request.workspace), read)


async def reply_filter_settings(services: Services, request: Request) -> FilterSettings:
    """The workspace's filter settings for a reply: from memory while fresh (no thread hop), else read;
    the strictest policy while the database is down, since the workspace's own cannot be read."""
    kept = services.filter_settings.fresh((request.platform, request.workspace))
    if kept is not None:
        return kept
    strictest = FilterSettings("block")
    return await services.run_db(read_or_default, strictest, workspace_filter_settings, services, request)


def generation_workspace(request: Request) -> str:
    """Whose share of the generation queue a request uses: its platform's workspace (a Discord server,
    a Slack workspace)."""
    return f"{request.platform}:{request.workspace}"


def join_reply(prompt: str, continuation: str) -> tuple[str, int]:
    """The reply text (the prompt, then what the model wrote) and where the model's part starts."""
    if prompt and continuation[:1].isalnum():
        return f"{prompt} {continuation.lstrip()}", len(prompt) + 1
    return prompt + continuation, len(prompt)


async def followed_conversation(
    services: Services, request: Request, count: int
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """What a reply without a prompt follows, oldest first, and who wrote it: the channel's last `count`
    messages, then the message addressed to the bot (`reply_to`, the asker's) unless it is the last."""
    recent, authors = await services.run_db(
        read_or_default, ((), ()), conversation_by, services, request, None, count
    )
    said = str(request.args.get("reply_to") or "").strip()
    if said and (not recent or recent[-1] != said):
        recent, authors = (*recent, said), (*authors, request.user)
    return recent, authors


async def conversation_names(
    services: Services, request: Request, authors: tuple[str, ...]
) -> tuple[frozenset[str], frozenset[str], str] | None:
    """`bot.core.names.readdress`'s members, the conversation's authors and its last speaker, for a
    reply that follows a conversation written by `authors` (None: names stay as the model wrote them)."""
    if not services.config.names_from_conversation or not authors:
        return None
    # Kept: no trip to the database threads (most replies).
    members = services.members.fresh((request.platform, request.workspace))
    if members is None:
        members = await services.run_db(read_or_default, frozenset(), workspace_members, services, request)
    return members, frozenset(author.lower() for author in authors), authors[-1]


async def generate(services: Services, request: Request) -> Reply:
    """Continue the prompt (or start from nothing) with the serving model; the whole channel sees it.

    Every sample passes the output filter (`bot.core.output_filter`); a blocked one, or one with no
    visible text, is sampled again, up to `MAX_ATTEMPTS` in all, before a friendly line. When the
    generation queue is full the answer is "busy, try again in a moment", at once.
    """
    config = services.config
    prompt = cap_prompt(str(request.args.get("prompt") or "").strip())
    length = int_arg(request.args, "length", 0, 1, config.max_length) or None  # None: the defaults'
    temperature = float_arg(request.args, "temperature", config.temperature, 0.0, 2.0)
    serving = await services.run_db(serving_model, services, request)
    if serving is None:
        return safe_reply(request, NO_MODEL_YET, ephemeral=True)
    settings = await reply_filter_settings(services, request)
    # Loaded by `serving_model` on its way (a reply is never checked against fewer guards than that).
    guards = list(serving.guards) or await services.run_work(
        services.copy_guards.for_serving, serving.lineage
    )
    output = OutputFilter(settings, guards)
    if output.check_prompt(prompt).blocked:
        return safe_reply(request, PROMPT_REFUSED, ephemeral=True)
    recent: tuple[str, ...] = ()
    authors: tuple[str, ...] = ()  # who wrote `recent`, for a reply that follows the conversation
    # The messages read for the length cap (`reply_params`); the newest of them are the context.
    fetched = LENGTH_MESSAGES if config.length_from_channel else CONTEXT_MESSAGES
    member = member_id(str(request.args.get("as") or ""))
    if member:
        # Like a member who agreed to it: the reply follows their own latest messages in this channel.
        if not await services.run_db(imitable, services, request, member):
            return safe_reply(request, NOT_IMITABLE, ephemeral=True)
        recent = await services.run_db(conversation, services, request, member, fetched)
    elif not prompt:
        # No prompt (or a message addressed to the bot): the reply is the conversation's next message.
        recent, authors = await followed_conversation(services, request, fetched)
    context = recent[-CONTEXT_MESSAGES:]
    names = await conversation_names(services, request, authors)
    params = reply_params(config, recent, length, temperature)
    if context:
        # The messages just read are in no model's copy guard yet: a reply must not repeat them either.
        output = OutputFilter(settings, [*guards, build_copy_guard(context)])
    checked = Checked(FALLBACK, "none yet")
    blocked_samples = 0
    for attempt in range(1, MAX_ATTEMPTS + 1):
        try:
            continuation = await services.generation.generate(
                serving.path, prompt, params, context, workspace=generation_workspace(request)
            )
        except GenerationBusy as busy:
            # Saturated: answered at once, to the asker only, so they can simply try again.
            return safe_reply(request, str(busy), ephemeral=True)
        if not continuation.strip():
            # Only whitespace (a reply cut at its length before any text): sampled again, like a blocked
            # one, and the friendly line only when every attempt was blank.
            checked = Checked(generated_or_friendly(""))
            continue
        if names is not None:
            continuation = readdress(continuation, *names)
        text, after = join_reply(prompt, continuation)
        checked = output.check(text, after)
        if checked.blocked is None:
            break
        blocked_samples += 1
        # Never the text or the word: only that a sample was blocked and the rule that did it.
        where = f"{request.workspace}/{request.channel}"
        log.info("generate in %s: sample %d blocked (%s)", where, attempt, checked.blocked)
    fallback = checked.blocked is not None
    services.filter_stats.record(
        request.platform,
        request.workspace,
        resampled=blocked_samples > 0,
        masked=checked.masked > 0 and not fallback,
        fallback=fallback,
    )
    log.debug("generate in %s/%s answered by %s", request.workspace, request.channel, serving.label)
    label = f"{serving.label}, imitating a member who agreed to it" if member else serving.label
    return safe_reply(request, FALLBACK if fallback else checked.text, model=label)
