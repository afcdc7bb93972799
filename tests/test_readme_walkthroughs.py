"""The README's walkthroughs, run as written on a fresh data directory, so the README cannot drift.

Each walkthrough is the first code block under its heading. In a block, a line that starts with
`chatsmith` (or `$ chatsmith`) is a command; `> ` lines are what is typed into the console the last
command started; any other line is recorded output of the `> ` line before it. Recorded replies are
compared by their first words (replies of `generate` are samples, so only their presence counts).
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parent.parent
README = REPOSITORY / "README.md"
COMPARED_WORDS = 4


@dataclass
class Step:
    """One command of a walkthrough, what is typed into it, and what the README shows it answering."""

    argv: list[str]
    typed: list[str] = field(default_factory=list)
    recorded: list[tuple[str, str]] = field(default_factory=list)  # (typed line, recorded reply)


def walkthrough(heading: str) -> list[Step]:
    """The steps of the first code block under `heading`."""
    text = README.read_text(encoding="utf-8")
    section = text[text.index(heading + "\n") :]
    block = re.search(r"```[a-z]*\n(.*?)```", section, re.DOTALL)
    assert block is not None, f"no code block under {heading!r}"
    steps: list[Step] = []
    for line in block.group(1).splitlines():
        command = line.removeprefix("$ ")
        if command.startswith("chatsmith "):
            steps.append(Step(shlex.split(command, comments=True)[1:]))
        elif line.startswith("> "):
            steps[-1].typed.append(line[2:])
        elif line.strip():
            steps[-1].recorded.append((steps[-1].typed[-1], line))
    return steps


def run(step: Step, data_dir: Path, **settings: str) -> subprocess.CompletedProcess[str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("CHATSMITH_") and key != "TF_CONFIG"
    }
    env.update(
        CHATSMITH_DATA_DIR=str(data_dir),
        PYTHONPATH=str(REPOSITORY),
        CUDA_VISIBLE_DEVICES="",
        TF_CPP_MIN_LOG_LEVEL="3",
        **settings,
    )
    done = subprocess.run(
        [sys.executable, "-m", "chatsmith.cli", *step.argv],
        input="".join(line + "\n" for line in step.typed),
        cwd=REPOSITORY,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, f"chatsmith {shlex.join(step.argv)}: {done.stderr}"
    assert "Traceback" not in done.stderr
    return done


def _first_words(line: str) -> list[str]:
    return line.split()[:COMPARED_WORDS]


def check_replies(step: Step, out: str) -> None:
    """The console answered each recorded line as the README shows, and nothing more."""
    replies = [line for line in out.splitlines() if line.strip()]
    assert len(replies) == len(step.recorded), (
        f"{step.argv}: README shows {step.recorded}, replay gave {replies}"
    )
    for (typed, recorded), reply in zip(step.recorded, replies, strict=True):
        if typed.startswith("/generate") and "as:@" not in typed:
            continue  # a sample
        if typed.startswith("/generate") and recorded.startswith("That member"):
            assert _first_words(reply) == _first_words(recorded), (typed, reply)
        elif typed.startswith("/generate"):
            # A sample, not a refusal and not a cooldown.
            assert not reply.startswith("That member") and " s " not in f"{reply} "[-12:], (typed, reply)
        else:
            assert _first_words(reply) == _first_words(recorded), (typed, reply)


def test_console_walkthrough(tmp_path: Path) -> None:
    steps = walkthrough("## Try the bot in the terminal: `chatsmith console`")
    assert [step.argv[0] for step in steps] == ["db", "import", "console"]
    outputs = [run(step, tmp_path / "data").stdout for step in steps]
    console = outputs[-1]
    assert "Training queued for #general" in console
    assert "needs at least" not in console and "Nothing to train" not in console
    # /generate answers last: a sample of the prompt, or the friendly line when the sample was empty.
    last = console.rstrip().splitlines()[-1]
    assert last.startswith("once upon a time") or last.startswith("The model had nothing to say")


@pytest.mark.slow
def test_imitation_walkthrough(tmp_path: Path) -> None:
    steps = walkthrough("### Replies that follow the conversation, and imitation")
    assert len(steps) >= 4 and all(step.argv[0] == "console" for step in steps)
    for step in steps:
        check_replies(step, run(step, tmp_path / "data").stdout)


@pytest.mark.slow
def test_trainer_walkthrough(tmp_path: Path) -> None:
    steps = walkthrough("## Trainer")
    assert [step.argv[0] for step in steps] == ["db", "import", "train-scope", "trainer", "generate"]
    # A job of five steps: the walkthrough's shape, not its model, is what is checked here. Steps, not a
    # short budget: on a loaded machine, loading the base model alone can take a budget of seconds.
    job = {"CHATSMITH_TRAINER_TRAIN_CONFIG": '{"epochs": 1, "steps_per_epoch": 5}'}
    outputs = [run(step, tmp_path / "data", **job) for step in steps]
    imported, queued, trained, generated = (done.stdout for done in outputs[1:])
    assert re.match(r"imported \d+ of \d+ messages \(irc format\) into console:W #C", imported)
    assert queued.startswith("job 1 queued for console:W #C")
    assert re.match(r"job 1 (promoted|not promoted): .*\(console:W #C v1", trained), trained
    assert generated.strip() and "using the " in outputs[-1].stderr


@pytest.mark.parametrize("heading", ["## Trainer", "## Try the bot in the terminal: `chatsmith console`"])
def test_walkthroughs_name_files_the_clone_has(heading: str) -> None:
    for step in walkthrough(heading):
        for argument in step.argv:
            if "/" in argument and not argument.startswith("-"):
                assert (REPOSITORY / argument).exists(), argument
