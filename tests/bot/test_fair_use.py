"""Fair use through the command core: one workspace's /train and /generate cannot crowd out the others."""

from __future__ import annotations

from dataclasses import replace

from tests.bot.conftest import CHANNEL_LINES, Chat


def test_train_refuses_past_the_workspace_queue_cap_in_one_line(chat: Chat) -> None:
    chat.services.config = replace(chat.services.config, train_queue_per_workspace=2)
    answers = []
    for channel in ("one", "two", "three"):
        admin = chat.user("root", admin=True, channel=channel)
        admin.say("/collect on")
        for line in CHANNEL_LINES[:6]:
            chat.user("ann", channel=channel).say(line)
        answers.append(admin.say("/train"))
    assert "Training queued for #one" in answers[0] and "Training queued for #two" in answers[1]
    assert answers[2] == (
        "this workspace already has 2 training jobs queued, the most it may; try again when one of them has run"
    )
    # Another workspace is not held to this one's cap.
    other = chat.user("root", admin=True, channel="one", workspace="other-team")
    other.say("/collect on")
    for line in CHANNEL_LINES[:6]:
        chat.user("bob", channel="one", workspace="other-team").say(line)
    assert "Training queued for #one" in other.say("/train")


def test_generate_is_queued_under_its_workspace(chat: Chat) -> None:
    seen: list[str] = []
    submit = chat.services.generation.submit

    def recording_submit(*args, workspace: str = "", **kwargs):  # type: ignore[no-untyped-def]
        seen.append(workspace)
        return submit(*args, workspace=workspace, **kwargs)

    chat.services.generation.submit = recording_submit  # type: ignore[method-assign]
    chat.user("ann").say("/generate hello")
    chat.user("bob", workspace="other-team").say("/generate hello")
    assert seen == ["console:team", "console:other-team"]
