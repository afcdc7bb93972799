"""The README flow, in-process through `chatsmith.cli.main`: db upgrade, import, train-scope, trainer --once,
generate --scope; and the operator commands around it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chatsmith.cli import main
from tests.trainer.conftest import IRC_LOG, QUICK_TRAIN


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every setting pointing into tmp_path; tiny models trained from scratch."""
    monkeypatch.setenv("CHATSMITH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CHATSMITH_DATABASE_URL", f"sqlite:///{tmp_path / 'data' / 'chatsmith.db'}")
    monkeypatch.setenv("CHATSMITH_MODEL_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("CHATSMITH_BASE_MODEL_PATH", "none")
    monkeypatch.setenv("CHATSMITH_TRAINER_SPEC", '{"units": 24, "embedding": 8, "seq_len": 16}')
    monkeypatch.setenv("CHATSMITH_TRAINER_TRAIN_CONFIG", json.dumps(QUICK_TRAIN))
    monkeypatch.setenv("CHATSMITH_TRAINER_MIN_MESSAGES", "100")
    return tmp_path


def test_readme_flow_trains_activates_and_generates_with_the_scope_model(
    cli_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = cli_env / "ubuntu.log"
    with IRC_LOG.open(encoding="utf-8") as source:
        log.write_text("".join(next(source) for _ in range(800)), encoding="utf-8")

    assert main(["db", "upgrade"]) == 0
    capsys.readouterr()
    argv = [
        "import",
        "--platform",
        "console",
        "--workspace",
        "W",
        "--channel",
        "C",
        "--format",
        "irc",
        str(log),
    ]
    assert main(argv) == 0
    imported = capsys.readouterr().out
    assert main(argv) == 0  # again: nothing new
    again = capsys.readouterr().out
    added = int(imported.split()[1])
    assert added > 300 and again.startswith(f"imported 0 of {added} messages") and "already stored" in again

    assert main(["train-scope", "W", "C"]) == 0
    assert "job 1 queued for console:W #C (position 1 in the queue)" in capsys.readouterr().out
    assert main(["trainer", "--once"]) == 0
    ran = capsys.readouterr().out
    assert "job 1 promoted: " in ran and "(console:W" in ran and "succeeded" not in ran, ran

    assert main(["models", "list", "W", "C"]) == 0
    listing = capsys.readouterr().out
    assert "console:W #C" in listing and " active " in listing and "promoted: " in listing

    assert main(["generate", "--scope", "W", "C", "--max-tokens", "20", "--seed", "3", "--json"]) == 0
    captured = capsys.readouterr()
    model = Path(json.loads(captured.out)["model"])
    assert model.parent.parent.parent == cli_env / "models" and model.name == "model-v1"
    assert "using the channel model v1" in captured.err

    # Nothing new queued: the queue is empty and --once says so.
    assert main(["trainer", "--once"]) == 0
    assert "no queued jobs" in capsys.readouterr().out


def test_operator_commands_fail_in_one_line_naming_the_fix(
    cli_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Before `db upgrade` the trainer refuses to start.
    assert main(["trainer", "--once"]) == 2
    assert "run `chatsmith db upgrade`" in capsys.readouterr().err

    assert main(["db", "upgrade"]) == 0
    assert main(["train-scope", "nowhere"]) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: console:nowhere is not in the database; import messages first")
    assert error.count("\n") == 1

    lines = cli_env / "few.txt"
    lines.write_text("hello there\nhow are you\n", encoding="utf-8")
    assert main(["import", "--workspace", "W", "--channel", "C", "--format", "lines", str(lines)]) == 0
    assert main(["train-scope", "W", "C"]) == 0
    capsys.readouterr()
    # A failed job makes --once exit 1, with the reason on the job's line.
    assert main(["trainer", "--once"]) == 1
    assert "has 2 trainable messages, training needs at least 100" in capsys.readouterr().out

    assert main(["generate", "--scope", "W", "C"]) == 2
    assert "no model serves console:W #C yet" in capsys.readouterr().err
    assert main(["models", "rollback", "W", "C"]) == 2
    assert "no earlier model version" in capsys.readouterr().err
    assert main(["models", "activate", "99"]) == 2
    assert "no model version with id 99" in capsys.readouterr().err
    assert main(["generate", "--scope", "W", "C", "extra"]) == 2
    assert "--scope takes WORKSPACE [CHANNEL]" in capsys.readouterr().err
