"""The reply CPU benchmark runs end to end (tiny) and its stage clock counts each millisecond once."""

import subprocess
import sys
import time

from bench.reply_cpu import NEVER, PACKAGED_BASE, never_ending_model
from bench.reply_cpu_stages import StageClock
from bench.sources import REPO_ROOT
from textgen.tokenizers import EOS_ID


def test_tiny_run_prints_the_table_with_floors_and_stages():
    done = subprocess.run(
        [sys.executable, "-m", "bench.reply_cpu", "--tiny"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    out = done.stdout
    assert out.count("uptime") == 2
    for row in (
        "/generate through the core, same conversation: median",
        "/generate through the core, a new message before each: p90",
        "stepper alone (floor), a new message before each: median",
        "a new message before each: context: the model reads it",
        "same conversation: copy guard",
    ):
        assert row in out, row
    assert "the model never ends its message" in out


def test_the_model_copy_never_ends_its_message(tmp_path):
    from textgen.generator import Generator
    from textgen.sampling import SamplingParams

    model = never_ending_model(PACKAGED_BASE, tmp_path / "never")
    generator = Generator.from_bundle(model)
    assert float(generator.weights["logits/bias"][EOS_ID]) == NEVER
    [decoded] = generator.decode_best([[]], [SamplingParams(max_tokens=40, seed=1)])
    assert decoded.cut and len(decoded.ids) >= 40


def test_nested_stages_are_counted_once():
    clock = StageClock()

    def spin(seconds: float) -> None:
        end = time.thread_time() + seconds
        while time.thread_time() < end:
            pass

    inner = clock.wrap("inner", lambda: spin(0.02))

    def outer_body() -> None:
        spin(0.02)
        inner()

    clock.wrap("outer", outer_body)()
    taken = clock.take()
    assert 0.015 < taken["inner"] < 0.05 and 0.015 < taken["outer"] < 0.05
    assert clock.take() == {}
