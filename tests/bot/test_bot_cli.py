"""`chatsmith bot discord|slack` refuse to start without tokens, in one line naming the variable."""

from __future__ import annotations

import pytest

from chatsmith.cli import main
from chatsmith.settings import Settings

TOKEN_VARIABLES = (
    "DISCORD_TOKEN",
    "CHATSMITH_DISCORD_TOKEN",
    "SLACK_BOT_TOKEN",
    "CHATSMITH_SLACK_BOT_TOKEN",
    "SLACK_APP_TOKEN",
    "CHATSMITH_SLACK_APP_TOKEN",
    "SLACK_SIGNING_SECRET",
    "CHATSMITH_SLACK_SIGNING_SECRET",
)


@pytest.fixture(autouse=True)
def no_tokens(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    for name in TOKEN_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env


@pytest.mark.parametrize(
    ("argv", "env", "variable"),
    [
        (["bot", "discord"], {}, "DISCORD_TOKEN"),
        (["bot", "slack"], {}, "SLACK_BOT_TOKEN"),
        (["bot", "slack"], {"SLACK_BOT_TOKEN": "xoxb-secret-1"}, "SLACK_APP_TOKEN"),
        (
            ["bot", "slack"],
            {"SLACK_BOT_TOKEN": "xoxb-secret-1", "CHATSMITH_SLACK_MODE": "http"},
            "SLACK_SIGNING_SECRET",
        ),
    ],
)
def test_missing_token_is_one_line_naming_the_variable(
    argv: list[str],
    env: dict[str, str],
    variable: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and variable in err
    assert "xoxb-secret-1" not in err


def test_tokens_are_secret_in_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISCORD_TOKEN", "discord-secret-2")
    monkeypatch.setenv("CHATSMITH_SLACK_BOT_TOKEN", "xoxb-secret-3")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert (
        settings.discord_token is not None and settings.discord_token.get_secret_value() == "discord-secret-2"
    )
    assert (
        settings.slack_bot_token is not None
        and settings.slack_bot_token.get_secret_value() == "xoxb-secret-3"
    )
    shown = repr(settings) + str(settings.model_dump())
    assert "discord-secret-2" not in shown and "xoxb-secret-3" not in shown
