import numpy as np
import pytest
import tensorflow as tf

from textgen.data import num_batches, stream_window_batches, window_batches, window_starts
from textgen.errors import TextgenError


def test_causal_windows_predict_the_next_token_at_every_position():
    tokens = np.arange(1000, dtype=np.int32)
    batches = list(window_batches(tokens, seq_len=16, batch_size=4, causal=True, seed=1).dataset())
    assert (
        len(batches) == num_batches(1000, 16, 4, causal=True)
        or len(batches) == num_batches(1000, 16, 4, True) - 1
    )
    for inputs, labels in batches:
        inputs, labels = inputs.numpy(), labels.numpy()
        assert inputs.shape == (4, 16) and labels.shape == (4, 16)
        # windows are slices of the stream: consecutive ids, labels shifted by one
        np.testing.assert_array_equal(np.diff(inputs, axis=1), 1)
        np.testing.assert_array_equal(labels, inputs + 1)


def test_causal_epoch_covers_the_stream_without_overlap():
    starts = window_starts(10_000, 50, causal=True, rng=np.random.default_rng(3))
    ordered = np.sort(starts)
    assert np.all(np.diff(ordered) == 50)
    assert len(starts) >= 10_000 // 50 - 1


def test_bilstm_windows_label_the_token_after_the_window():
    tokens = np.arange(200, dtype=np.int32)
    inputs, labels = next(
        iter(window_batches(tokens, seq_len=8, batch_size=5, causal=False, seed=0).dataset())
    )
    np.testing.assert_array_equal(labels.numpy(), inputs.numpy()[:, -1] + 1)


def test_epochs_shuffle_differently_but_repeat_with_the_seed():
    tokens = np.arange(5000, dtype=np.int32)

    def first_batch(seed, epoch):
        return next(iter(window_batches(tokens, 10, 8, True, seed=seed, epoch=epoch).dataset()))[0].numpy()

    np.testing.assert_array_equal(first_batch(1, 1), first_batch(1, 1))
    assert not np.array_equal(first_batch(1, 1), first_batch(1, 2))


def test_gradient_accumulation_stacks_micro_batches_after_the_batch_axis():
    tokens = np.arange(3000, dtype=np.int32)
    inputs, labels = next(iter(window_batches(tokens, 10, 4, True, seed=0, grad_accum=3).dataset()))
    assert inputs.shape == (4, 3, 10) and labels.shape == (4, 3, 10)


def test_windows_are_gathered_per_batch_not_materialised():
    # 4M tokens: padded n-grams with one-hot labels would need terabytes; the dataset holds the stream once.
    tokens = np.zeros(4_000_000, dtype=np.int32)
    dataset = window_batches(tokens, seq_len=128, batch_size=32, causal=False, seed=0).dataset()
    inputs, labels = next(iter(dataset))
    assert inputs.shape == (32, 128) and labels.shape == (32,)


def test_corpus_shorter_than_a_window_is_a_clear_error():
    with pytest.raises(TextgenError, match="fewer than one window"):
        window_starts(10, 64, causal=True, rng=None)


def test_stream_windows_continue_row_by_row_across_steps():
    from textgen.data import stream_num_batches

    tokens = np.arange(10_000, dtype=np.int32)
    batches = [
        (x.numpy(), y.numpy()) for x, y, _ in stream_window_batches(tokens, 20, 4, seed=5, epoch=1).dataset()
    ]
    assert len(batches) >= stream_num_batches(10_000, 20, 4) - 1
    for (inputs, labels), (next_inputs, _) in zip(batches, batches[1:], strict=False):
        np.testing.assert_array_equal(labels, inputs + 1)
        # Row b of the next step starts right after row b of this step: the carried state fits.
        np.testing.assert_array_equal(next_inputs[:, 0], inputs[:, -1] + 1)
    # Rows read disjoint parts of the stream.
    starts = batches[0][0][:, 0]
    assert np.all(np.diff(starts) == (10_000 - 1) // 4)


def test_capped_stream_epochs_move_on_through_the_text():

    tokens = np.arange(20_000, dtype=np.int32)
    first = [
        x.numpy()[0, 0] for x, _, _ in stream_window_batches(tokens, 10, 4, epoch=1, max_steps=50).dataset()
    ]
    second = [
        x.numpy()[0, 0] for x, _, _ in stream_window_batches(tokens, 10, 4, epoch=2, max_steps=50).dataset()
    ]
    assert len(first) == len(second) == 50
    # Epoch 2 continues where epoch 1 stopped instead of re-reading the same windows.
    assert second[0] == first[-1] + 10


def test_stream_resets_a_share_of_rows_at_every_step_repeatably():

    tokens = np.arange(200_000, dtype=np.int32)

    def carry_masks(seed: int) -> np.ndarray:
        dataset = stream_window_batches(tokens, 10, 32, seed=seed, epoch=1, reset_rate=0.1).dataset()
        return np.stack([carry.numpy() for _, _, carry in dataset])

    masks = carry_masks(3)
    assert masks.shape[1] == 32 and set(np.unique(masks)) == {0.0, 1.0}
    # Every row starts the epoch from the zero state; later about one row in ten is reset per step.
    assert not masks[0].any()
    assert abs((1 - masks[1:].mean()) - 0.1) < 0.01
    np.testing.assert_array_equal(masks, carry_masks(3))
    assert not np.array_equal(masks, carry_masks(4))
    # Without resets, only the first step starts fresh.
    plain = [c.numpy() for _, _, c in stream_window_batches(tokens, 10, 32, seed=3, epoch=1).dataset()]
    assert not plain[0].any() and all(c.all() for c in plain[1:])


def test_the_corpus_is_kept_in_the_smallest_type_its_vocabulary_fits(monkeypatch):
    from textgen import data
    from textgen.tokenizers import ByteTokenizer

    assert data.token_dtype(200) == np.uint8 and data.token_dtype(260) == np.uint16
    assert data.token_dtype(70_000) == np.uint32
    tokenizer = ByteTokenizer()
    messages = [f"message {i} é" for i in range(25)]
    # Encoded a few messages at a time, the stream is the same as encoded at once, at half of int32.
    monkeypatch.setattr(data, "ENCODE_SLICE_MESSAGES", 4)
    compact = data.encode_compact(tokenizer, messages)
    assert compact.dtype == np.uint16
    np.testing.assert_array_equal(compact, tokenizer.encode_messages(messages))
    # The model still reads int32 windows of the same ids.
    inputs, labels = next(iter(data.stream_window_batches(compact, 8, 2).dataset()))[:2]
    assert inputs.dtype == tf.int32 and labels.dtype == tf.int32
    np.testing.assert_array_equal(inputs.numpy()[0], compact[:8])


def test_batches_are_read_from_the_callers_array_not_a_copy_of_it():
    # A TensorFlow copy of the token table would cost as much memory again as the corpus.
    tokens = np.zeros(10_000, dtype=np.uint16)
    dataset = window_batches(tokens, seq_len=16, batch_size=4, causal=True).dataset()
    tokens[:] = 7
    inputs, labels = next(iter(dataset))
    assert np.all(inputs.numpy() == 7) and np.all(labels.numpy() == 7)


def _arrays(batches) -> list[tuple[np.ndarray, ...]]:
    return [tuple(np.asarray(part) for part in element) for element in batches]


@pytest.mark.parametrize(
    "plan",
    [
        lambda tokens: window_batches(tokens, 16, 8, True, seed=1, epoch=2),
        lambda tokens: window_batches(tokens, 16, 8, False, seed=1, epoch=2, grad_accum=3),
        lambda tokens: window_batches(tokens, 16, 7, True, drop_remainder=False),
        lambda tokens: stream_window_batches(tokens, 16, 8, seed=3, epoch=2, grad_accum=2, reset_rate=0.2),
        lambda tokens: stream_window_batches(tokens, 16, 4, seed=3, epoch=3, max_steps=7),
    ],
    ids=["windows", "bilstm-accumulated", "remainder", "streams-accumulated-resets", "streams-capped"],
)
def test_numpy_batches_are_the_datasets_batches(plan) -> None:
    """A model on one device trains from the NumPy batches; strategies get the same ones from tf.data."""
    tokens = np.random.default_rng(0).integers(0, 260, 3000).astype(np.uint16)
    batches = plan(tokens)
    from_numpy, from_dataset = _arrays(batches), _arrays(batches.dataset())
    assert len(from_numpy) == len(from_dataset) == len(batches) > 1
    for mine, theirs in zip(from_numpy, from_dataset, strict=True):
        assert [(a.shape, a.dtype) for a in mine] == [(a.shape, a.dtype) for a in theirs]
        assert all((a == b).all() for a, b in zip(mine, theirs, strict=True))
    first = _arrays(batches.take(2))
    assert len(first) == 2 and all((a == b).all() for a, b in zip(first[1], from_numpy[1], strict=True))


def test_a_validation_sample_is_drawn_from_the_whole_text_and_the_same_every_time() -> None:
    tokens = np.arange(20_000, dtype=np.uint32) % 250
    sample = window_batches(tokens, 16, 8, False, seed=0, drop_remainder=False, sample_steps=5)
    starts = sample.order
    assert len(sample) == 5 and len(starts) == 40
    assert list(starts) == sorted(starts) and starts[-1] > len(tokens) // 2  # not just the text's head
    assert all((a == b).all() for a, b in zip(_arrays(sample)[0], _arrays(sample)[0], strict=True))
