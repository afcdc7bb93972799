"""What the README and `--help` promise of the command line, on a fresh data directory each time."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from chatsmith.cli import main
from db.engine import create_database_engine, immediate
from db.registry import create_version, mark_candidate, promote
from db.scopes import Scope, get_or_create_channel, get_or_create_workspace


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every setting pointing into tmp_path, with no base model."""
    monkeypatch.setenv("CHATSMITH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CHATSMITH_DATABASE_URL", f"sqlite:///{tmp_path / 'data' / 'chatsmith.db'}")
    monkeypatch.setenv("CHATSMITH_MODEL_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("CHATSMITH_BASE_MODEL_PATH", "none")
    return tmp_path


def _add_version(tmp_path: Path, platform: str, workspace: str, channel: str, note: str = "") -> int:
    """An active version (with an empty bundle folder) for platform:workspace #channel; returns its id."""
    engine = create_database_engine(f"sqlite:///{tmp_path / 'data' / 'chatsmith.db'}")
    try:
        with Session(immediate(engine), expire_on_commit=False) as session, session.begin():
            ws = get_or_create_workspace(session, platform, workspace)
            ch = get_or_create_channel(session, ws, channel)
            session.flush()
            version = create_version(session, Scope(ws.id, ch.id), tokenizer_kind="byte", spec={})
            bundle = tmp_path / "models" / f"{platform}-{workspace}-{channel}"
            bundle.mkdir(parents=True)
            mark_candidate(session, version, bundle_path=str(bundle))
            promote(session, version)
            version.note = note
            return version.id
    finally:
        engine.dispose()


def test_models_list_platform_filter_applies_without_a_workspace(
    cli_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["db", "upgrade"]) == 0
    _add_version(cli_env, "console", "home", "general")
    _add_version(cli_env, "discord", "123", "456")
    capsys.readouterr()

    assert main(["models", "list", "--platform", "discord"]) == 0
    listing = capsys.readouterr().out
    assert "discord:123" in listing and "console:home" not in listing

    assert main(["models", "list"]) == 0
    everything = capsys.readouterr().out
    assert "discord:123" in everything and "console:home" in everything


def test_models_list_shows_the_whole_note_wrapped(cli_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["db", "upgrade"]) == 0
    note = "promoted: " + "scored well on the held-out part of the channel " * 4 + "; withdrawn: member left"
    _add_version(cli_env, "console", "home", "general", note=note)
    capsys.readouterr()

    assert main(["models", "list"]) == 0
    listing = capsys.readouterr().out
    assert "withdrawn: member left" in listing
    assert " ".join(listing.split()).count("held-out part of the channel") == 4
    assert all(len(line) <= 160 for line in listing.splitlines())
