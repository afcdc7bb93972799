"""The bots run where TensorFlow is not installed (the slim bot image): nothing on their import path or
their serving path imports it, and a reply is generated with NumPy alone."""

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# Runs in a fresh interpreter where importing TensorFlow or Keras fails as if they were not installed.
WITHOUT_TENSORFLOW = """
import sys

class NotInstalled:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("tensorflow", "keras"):
            raise ModuleNotFoundError(f"No module named {name!r} (blocked: the bot image has none)")
        return None

sys.meta_path.insert(0, NotInstalled())
import bot.console, bot.core.commands, bot.discord_bot, bot.slack_app  # noqa: E401
from chatsmith.cli import main

code = main(sys.argv[1:])
assert "tensorflow" not in sys.modules and "keras" not in sys.modules
sys.exit(code)
"""


def test_the_console_bot_generates_a_reply_without_tensorflow(tmp_path: Path) -> None:
    # The packaged base model serves, from its memory-mapped weights.npy, in a process without TensorFlow.
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("CHATSMITH_", "DISCORD_", "SLACK_"))
    }
    env.update(
        CHATSMITH_DATA_DIR=str(tmp_path / "data"),
        CHATSMITH_GENERATE_DEFAULT_LENGTH="30",
        PYTHONPATH=str(REPO),
    )
    done = subprocess.run(
        [sys.executable, "-c", WITHOUT_TENSORFLOW, "console"],
        input="/generate the bot says\n",
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "the bot says" in done.stdout, done.stdout
    assert "No model answers here" not in done.stdout
