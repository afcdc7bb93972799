"""Settings, `.env.example`, and `chatsmith config show|check`: secrets masked, one line per problem."""

from __future__ import annotations

import json
import os
import re
import shlex
import socket
from pathlib import Path

import pytest
from pydantic import ValidationError

from chatsmith.cli import main
from chatsmith.settings import FIELD_GROUPS, Settings, SettingsError, describe_validation_error, load_settings
from tests.deploy.helpers import CONTAINER_VARIABLES, ROOT

ENV_EXAMPLE = ROOT / ".env.example"
DISCORD_LIKE_TOKEN = "MTIzNDU2Nzg5MDEyMzQ1Njc4OQ.GaBcDe.abcdefghijklmnopqrstuvwxyz0123456789AB"
SIGNING_SECRET = "0123456789abcdef0123456789abcdef"
# Read before `clean_env` empties the CHATSMITH_* variables.
POSTGRES_URL = os.environ.get("CHATSMITH_TEST_POSTGRES_URL")


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def problems(output: str) -> list[str]:
    return [line.removeprefix("problem: ") for line in output.splitlines() if line.startswith("problem: ")]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ------------------------------------------------------------------------------------------ settings


def test_every_field_is_in_exactly_one_group() -> None:
    grouped = [name for names in FIELD_GROUPS.values() for name in names]
    assert sorted(grouped) == sorted(Settings.model_fields)
    assert len(grouped) == len(set(grouped))


def test_env_names_keep_the_documented_spellings() -> None:
    assert Settings.env_names("data_dir") == ("CHATSMITH_DATA_DIR",)
    assert Settings.env_names("discord_token") == ("DISCORD_TOKEN", "CHATSMITH_DISCORD_TOKEN")
    assert Settings.env_names("slack_signing_secret")[0] == "SLACK_SIGNING_SECRET"
    assert Settings.secret_fields() == {
        "discord_token",
        "slack_bot_token",
        "slack_app_token",
        "slack_signing_secret",
    }


def test_environment_and_dotenv(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (clean_env / ".env").write_text(
        "CHATSMITH_TRAINER_SCHEDULE='0 4 * * *'\nCHATSMITH_ADMIN_ROLES=mods, admins\n"
        'CHATSMITH_TRAINER_SPEC={"arch": "lstm"}\nCHATSMITH_GENERATION_WORKERS=3\n'
    )
    monkeypatch.setenv("CHATSMITH_GENERATION_WORKERS", "5")
    monkeypatch.setenv("slack_bot_token", "xoxb-lowercase-name")
    settings = load_settings()
    assert settings.trainer_schedule == "0 4 * * *"
    assert settings.admin_roles == ["mods", "admins"]
    assert settings.trainer_spec == {"arch": "lstm"}
    assert settings.generation_workers == 5, "the environment wins over .env"
    assert settings.slack_bot_token is not None
    assert settings.source_of("generation_workers") == "env"
    assert settings.source_of("trainer_schedule") == ".env"
    assert settings.source_of("backfill_max") == "default"


def test_invalid_values_are_one_line_each_and_never_show_a_secret(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHATSMITH_SLACK_MODE", "websocket")
    monkeypatch.setenv("CHATSMITH_TRAINER_MAX_ATTEMPTS", "0")
    monkeypatch.setenv("CHATSMITH_TRAINER_TRAIN_CONFIG", "{epochs: 5}")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    lines = caught.value.problems
    assert len(lines) == 3
    assert any(line.startswith("CHATSMITH_SLACK_MODE: ") and "'socket' or 'http'" in line for line in lines)
    assert any(line.startswith("CHATSMITH_TRAINER_MAX_ATTEMPTS: ") for line in lines)
    assert any(line.startswith("CHATSMITH_TRAINER_TRAIN_CONFIG: not valid JSON") for line in lines)
    assert all("\n" not in line and "fix it in the environment or .env" in line for line in lines)
    with pytest.raises(ValidationError) as secret_error:
        Settings(_env_file=None, discord_token=12345678901234)  # type: ignore[call-arg, arg-type]
    described = describe_validation_error(secret_error.value)
    assert described and "12345678901234" not in " ".join(described)


# ------------------------------------------------------------------------------------------ .env.example


def example_entries() -> dict[str, str]:
    """NAME -> value of every `NAME=value` or `# NAME=value` line of .env.example."""
    entries = {}
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        match = re.match(r"^#? ?([A-Z][A-Z0-9_]*)=(.*)$", line)
        if match:
            entries[match.group(1)] = match.group(2)
    return entries


def test_env_example_documents_every_variable_with_its_default() -> None:
    entries = example_entries()
    defaults = Settings(_env_file=None)  # type: ignore[call-arg]
    for name in Settings.model_fields:
        variable = Settings.env_names(name)[0]
        assert variable in entries, f"{variable} is missing from .env.example"
        value = entries[variable]
        written = shlex.split(value)[0] if value else ""
        assert written == defaults.display_value(name), f"{variable}: .env.example says {value!r}"
    settings_names = {name for field in Settings.model_fields for name in Settings.env_names(field)}
    unknown = set(entries) - settings_names - CONTAINER_VARIABLES
    assert not unknown, f".env.example documents variables nothing reads: {sorted(unknown)}"
    assert set(entries) >= CONTAINER_VARIABLES


def test_env_example_as_dotenv_changes_nothing(clean_env: Path) -> None:
    (clean_env / ".env").write_text(ENV_EXAMPLE.read_text(encoding="utf-8"))
    loaded = load_settings()
    defaults = Settings(_env_file=None)  # type: ignore[call-arg]
    for name in Settings.model_fields:
        assert loaded.display_value(name) == defaults.display_value(name), name


# ------------------------------------------------------------------------------------------ config show


def test_show_masks_secrets_and_the_database_password(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DISCORD_TOKEN", DISCORD_LIKE_TOKEN)
    monkeypatch.setenv("SLACK_SIGNING_SECRET", SIGNING_SECRET)
    monkeypatch.setenv("CHATSMITH_DATABASE_URL", "postgresql+psycopg://bob:hunter2-pw@db.example:5432/cs")
    (clean_env / ".env").write_text("SLACK_BOT_TOKEN=xoxb-from-dotenv-123\n")
    code, output = run(["config", "show"], capsys)
    assert code == 0
    for secret in (DISCORD_LIKE_TOKEN, SIGNING_SECRET, "hunter2-pw", "xoxb-from-dotenv-123"):
        assert secret not in output
    assert "DISCORD_TOKEN=***  # env" in output
    assert "SLACK_BOT_TOKEN=***  # .env" in output
    assert "SLACK_APP_TOKEN=  # default" in output
    assert "CHATSMITH_DATABASE_URL=postgresql+psycopg://bob:***@db.example:5432/cs  # env" in output
    assert "CHATSMITH_TRAINER_SCHEDULE='0 3 * * *'  # default" in output
    code, output = run(["config", "show", "--json"], capsys)
    shown = json.loads(output)
    assert shown["variables"]["DISCORD_TOKEN"] == {
        "value": "***",
        "source": "env",
        "group": "discord",
        "secret": True,
    }
    assert "hunter2-pw" not in output and DISCORD_LIKE_TOKEN not in output
    assert set(shown["variables"]) == {Settings.env_names(name)[0] for name in Settings.model_fields}


def test_show_reports_invalid_values(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CHATSMITH_SLACK_HTTP_PORT", "seventy")
    code, output = run(["config", "show"], capsys)
    assert code == 2
    assert problems(output)[0].startswith("CHATSMITH_SLACK_HTTP_PORT: ")


# ------------------------------------------------------------------------------------------ config check


def test_check_passes_on_the_embedded_default(clean_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, output = run(["config", "check"], capsys)
    assert code == 0, output
    assert output.strip().endswith("configuration OK")
    assert not (clean_env / "data").exists(), "check creates nothing"


def test_check_passes_on_a_complete_configuration(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from db.schema import upgrade

    database = clean_env / "db" / "chatsmith.db"
    database.parent.mkdir()
    upgrade(f"sqlite:///{database}")
    monkeypatch.setenv("CHATSMITH_DATABASE_URL", f"sqlite:///{database}")
    monkeypatch.setenv("DISCORD_TOKEN", DISCORD_LIKE_TOKEN)
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-1-2-3")
    monkeypatch.setenv("SLACK_SIGNING_SECRET", SIGNING_SECRET)
    monkeypatch.setenv("CHATSMITH_SLACK_MODE", "http")
    monkeypatch.setenv("CHATSMITH_BASE_MODEL_PATH", "none")
    monkeypatch.setenv(
        "TF_CONFIG",
        json.dumps({"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 1}}),
    )
    code, output = run(["config", "check", "--role", "discord", "--role", "slack"], capsys)
    assert code == 0, output
    assert "is reachable, schema" in output and "is current" in output
    assert "DISCORD_TOKEN has the shape of a bot token" in output
    assert "worker 1 of 2" in output
    assert DISCORD_LIKE_TOKEN not in output and SIGNING_SECRET not in output


@pytest.mark.parametrize(
    ("env", "variable", "fix"),
    [
        (
            {"CHATSMITH_SLACK_MODE": "http", "SLACK_BOT_TOKEN": "xoxb-1"},
            "SLACK_SIGNING_SECRET",
            "needs the signing",
        ),
        ({"SLACK_BOT_TOKEN": "xoxb-1"}, "SLACK_APP_TOKEN", "set SLACK_APP_TOKEN"),
        ({"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_APP_TOKEN": "xoxb-2"}, "SLACK_APP_TOKEN", "xapp-"),
        ({"SLACK_APP_TOKEN": "xapp-1"}, "SLACK_BOT_TOKEN", "xoxb-"),
        ({"SLACK_BOT_TOKEN": "xoxp-user", "SLACK_APP_TOKEN": "xapp-1"}, "SLACK_BOT_TOKEN", "user token"),
        (
            {
                "CHATSMITH_SLACK_MODE": "http",
                "SLACK_BOT_TOKEN": "xoxb-1",
                "SLACK_SIGNING_SECRET": "xoxb-oops-123",
            },
            "SLACK_SIGNING_SECRET",
            "32 hexadecimal",
        ),
        ({"DISCORD_TOKEN": "Bot " + DISCORD_LIKE_TOKEN}, "DISCORD_TOKEN", "starts with 'Bot '"),
        ({"DISCORD_TOKEN": '"' + DISCORD_LIKE_TOKEN + '"'}, "DISCORD_TOKEN", "quotes"),
        ({"DISCORD_TOKEN": "123456789012345678"}, "DISCORD_TOKEN", "application or user id"),
        ({"DISCORD_TOKEN": "abcdefghijklmnopqrstuvwxyz012345"}, "DISCORD_TOKEN", "client secret"),
        ({"DISCORD_TOKEN": "not-a-token-at-all"}, "DISCORD_TOKEN", "three parts"),
        (
            {"CHATSMITH_DISCORD_SHARD_COUNT": "4"},
            "CHATSMITH_DISCORD_SHARD_COUNT",
            "CHATSMITH_DISCORD_SHARDED=true",
        ),
        ({"CHATSMITH_TRAINER_SCHEDULE": "0 25 * * *"}, "CHATSMITH_TRAINER_SCHEDULE", "five fields"),
        ({"CHATSMITH_TRAINER_SPEC": '{"arch": "transformer"}'}, "CHATSMITH_TRAINER_SPEC", "use one of"),
        (
            {"CHATSMITH_TRAINER_TRAIN_CONFIG": '{"epoch": 3}'},
            "CHATSMITH_TRAINER_TRAIN_CONFIG",
            "unknown field",
        ),
        (
            {"CHATSMITH_TRAINER_STALE_AFTER_SECONDS": "15"},
            "CHATSMITH_TRAINER_STALE_AFTER_SECONDS",
            "raise it",
        ),
        ({"CHATSMITH_BASE_MODEL_PATH": "/no/such/bundle"}, "CHATSMITH_BASE_MODEL_PATH", "'none'"),
        ({"CHATSMITH_DATABASE_URL": "not a url"}, "CHATSMITH_DATABASE_URL", "postgresql+psycopg://"),
        (
            {"CHATSMITH_DATABASE_URL": "postgresql+psycopg://u:pw@db:port/chatsmith"},
            "CHATSMITH_DATABASE_URL",
            "port of the database URL is not a number",
        ),
        ({"CHATSMITH_GENERATE_DEFAULT_LENGTH": "900"}, "CHATSMITH_GENERATE_DEFAULT_LENGTH", "lower it"),
        ({"TF_CONFIG": "{not json"}, "TF_CONFIG", "set it to"),
        (
            {"TF_CONFIG": '{"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 2}}'},
            "TF_CONFIG",
            "0..0",
        ),
        ({"CHATSMITH_SLACK_MODE": "sockets"}, "CHATSMITH_SLACK_MODE", "'socket' or 'http'"),
        # Role names grant nothing any more: the check says how to move to role ids.
        ({"CHATSMITH_ADMIN_ROLES": "ChatSmith-Admin"}, "CHATSMITH_ADMIN_ROLES", "CHATSMITH_ADMIN_ROLE_IDS"),
        ({"CHATSMITH_ADMIN_ROLE_IDS": "Moderators"}, "CHATSMITH_ADMIN_ROLE_IDS", "GUILD_ID:ROLE_ID"),
    ],
)
def test_check_reports_each_problem_on_one_line_with_its_fix(
    env: dict[str, str],
    variable: str,
    fix: str,
    clean_env: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    code, output = run(["config", "check"], capsys)
    assert code == 2, output
    found = problems(output)
    assert len(found) == 1, found
    assert found[0].startswith(f"{variable}: ") and fix in found[0], found[0]
    for value in env.values():
        if len(value) > 12 and ("TOKEN" in variable or "SECRET" in variable):
            assert value.strip('"').removeprefix("Bot ") not in output, "a secret was printed"


def test_check_requires_the_tokens_of_the_roles_asked_for(
    clean_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, output = run(["config", "check", "--role", "discord", "--role", "slack"], capsys)
    assert code == 2
    assert [line.split(":")[0] for line in problems(output)] == [
        "DISCORD_TOKEN",
        "SLACK_BOT_TOKEN",
        "SLACK_APP_TOKEN",
    ]


def test_check_unreachable_database_masks_the_password(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    port = closed_port()
    monkeypatch.setenv("CHATSMITH_DATABASE_URL", f"postgresql+psycopg://bob:hunter2-pw@127.0.0.1:{port}/cs")
    code, output = run(["config", "check", "--connect-timeout", "3"], capsys)
    assert code == 2
    (line,) = problems(output)
    assert line.startswith("CHATSMITH_DATABASE_URL: cannot connect")
    assert f"bob:***@127.0.0.1:{port}" in line and "CHATSMITH_DATABASE_URL is right" in line
    assert "hunter2-pw" not in output
    code, output = run(["config", "check", "--no-connect"], capsys)
    assert code == 0 and "hunter2-pw" not in output


def test_check_old_schema_says_to_upgrade(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from db.engine import create_database_engine
    from db.schema import downgrade, upgrade

    url = f"sqlite:///{clean_env / 'old.db'}"
    upgrade(url)
    engine = create_database_engine(url)
    downgrade(engine, "-1")
    engine.dispose()
    monkeypatch.setenv("CHATSMITH_DATABASE_URL", url)
    code, output = run(["config", "check"], capsys)
    assert code == 2
    assert "run `chatsmith db upgrade`" in problems(output)[0]


def test_check_unwritable_model_dir(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # A path under a regular file can never be created, whoever runs the test (root ignores modes).
    blocker = clean_env / "blocker"
    blocker.write_text("")
    monkeypatch.setenv("CHATSMITH_MODEL_DIR", str(blocker / "models"))
    code, output = run(["config", "check"], capsys)
    assert code == 2
    (line,) = problems(output)
    assert line.startswith("CHATSMITH_MODEL_DIR: ") and "is not a directory" in line and "writable" in line
    monkeypatch.setenv("CHATSMITH_MODEL_DIR", str(blocker))
    code, output = run(["config", "check"], capsys)
    assert code == 2 and "is not a directory" in problems(output)[0]


def test_check_base_model_must_be_a_bundle(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = clean_env / "not-a-bundle"
    empty.mkdir()
    monkeypatch.setenv("CHATSMITH_BASE_MODEL_PATH", str(empty))
    code, output = run(["config", "check"], capsys)
    assert code == 2
    assert "no bundle.json" in problems(output)[0]


def test_check_json_lists_every_problem(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CHATSMITH_SLACK_MODE", "http")
    monkeypatch.setenv("CHATSMITH_TRAINER_SCHEDULE", "whenever")
    code, output = run(["config", "check", "--json"], capsys)
    assert code == 2
    report = json.loads(output)
    assert report["ok"] is False
    assert {line.split(":")[0] for line in report["problems"]} == {
        "SLACK_BOT_TOKEN",
        "SLACK_SIGNING_SECRET",
        "CHATSMITH_TRAINER_SCHEDULE",
    }


@pytest.mark.skipif(not POSTGRES_URL, reason="PostgreSQL runs in CI (.ci/run) only")
@pytest.mark.postgres
def test_check_reaches_postgresql(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = str(POSTGRES_URL)
    monkeypatch.setenv("CHATSMITH_DATABASE_URL", url)
    code, output = run(["config", "check"], capsys)
    assert code == 0, output
    assert "reachable" in output
    from sqlalchemy.engine import make_url

    password = make_url(url).password
    assert not password or password not in output


def test_the_bots_and_the_trainer_default_to_the_settings_defaults() -> None:
    # One source of defaults: what a process runs with when nothing is set is what BotConfig() and
    # TrainerConfig() say, and the bots' minimum of messages for training is the trainer's.
    from dataclasses import replace

    from bot import defaults as bot_defaults
    from bot.core.cooldowns import CooldownRule
    from bot.core.services import BotConfig
    from chatsmith.wiring import bot_config, trainer_config
    from trainer.config import TrainerConfig

    defaults = Settings.model_construct()
    configured = bot_config(defaults)
    # A BotConfig built in code has no cooldowns; the deployed ones are bot.defaults'.
    assert configured.cooldowns == {name: CooldownRule(*s) for name, s in bot_defaults.COOLDOWNS.items()}
    assert replace(configured, base_model_path=None, cooldowns={}) == BotConfig()
    assert replace(trainer_config(defaults), base_model=None) == TrainerConfig()
    assert BotConfig().min_training_messages == TrainerConfig().min_messages == 200
    # An operator can turn the length drawn from the channel off.
    assert not bot_config(Settings.model_construct(generate_channel_lengths=False)).length_from_channel
