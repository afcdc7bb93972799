"""`chatsmith train`'s window and batch: 128 windows of 16 tokens by default, the same 2,048 tokens a step
whatever the window; a BiLSTM keeps its 64-token context, a fine-tune its parent's window and the library's
state resets."""

import pytest

from chatsmith.cli import build_parser, main
from chatsmith.commands.training_shape import state_reset, training_shape
from textgen.bundle import read_manifest


def shape(*options: str) -> tuple[int, int]:
    return training_shape(build_parser().parse_args(["train", "--corpus", "c", "--out", "o", *options]))


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ((), (16, 128)),
        (("--arch", "lstm"), (16, 128)),
        (("--arch", "bilstm"), (64, 32)),
        (("--seq-len", "128"), (128, 16)),
        (("--seq-len", "4096"), (4096, 1)),
        (("--batch-size", "8"), (16, 8)),
        (("--seq-len", "24", "--batch-size", "8"), (24, 8)),
    ],
)
def test_the_window_and_batch_of_a_run_from_scratch(options: tuple[str, ...], expected: tuple[int, int]):
    assert shape(*options) == expected


@pytest.fixture(scope="module")
def parent(tmp_path_factory, shakespeare):
    """A tiny bundle trained by `chatsmith train` at its defaults: the parent of the fine-tunes below."""
    out = tmp_path_factory.mktemp("shape")
    corpus = out / "plays.txt"
    corpus.write_text(shakespeare[:6_000], encoding="utf-8")
    tiny = ["--units", "8", "--embedding", "4", "--epochs", "1"]
    assert main(["train", "--corpus", str(corpus), "--out", str(out / "parent"), *tiny]) == 0
    return out / "parent"


def test_a_fine_tune_reads_its_parents_windows_in_batches_of_the_same_tokens(parent):
    # The defaults reached the bundle: a window of 16 tokens.
    assert read_manifest(parent)["spec"]["seq_len"] == 16
    # A fine-tune keeps the parent's window whatever --seq-len says, and reads 2,048 tokens a step.
    assert shape("--base", str(parent), "--seq-len", "128") == (16, 128)


def test_a_missing_parent_is_the_bundles_one_line_error(tmp_path):
    with pytest.raises(Exception, match="does not exist"):
        shape("--base", str(tmp_path / "nowhere"))


def reset(*options: str) -> float:
    return state_reset(build_parser().parse_args(["train", "--corpus", "c", "--out", "o", *options]))


def test_a_run_from_scratch_resets_fewer_rows_a_step_than_a_fine_tune(parent):
    assert reset() == 0.025
    assert reset("--state-reset", "0.2") == 0.2
    # A fine-tune keeps the library's share, as the trainer's jobs do, unless one is passed.
    assert reset("--base", str(parent)) == 0.05
    assert reset("--base", str(parent), "--state-reset", "0") == 0.0
