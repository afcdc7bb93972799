"""The seed-style baseline, written the way the original learning project worked.

Generation: for every new token, pre-pad the last `window` tokens with `pad_sequences`, call
`model.predict` on that one window and take the argmax of the last position's prediction. Nothing is
carried between calls, so every token re-runs the whole window and pays `predict`'s per-call cost
(building a data adapter, dispatching the compiled function, converting the result).

Training data: a word tokenizer; every prefix of every line is a sample (`line[:2]`, `line[:3]`, ...),
pre-padded to the longest with `pad_sequences`; the last word of each is the label, one-hot with
`to_categorical` (float64 in Keras 3); and `model.fit` on the arrays. Memory grows with
samples x vocabulary, i.e. faster than the corpus.

Keras is imported inside the functions that need it, so the analytic projection runs without it.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from textgen.tokenizers import WordTokenizer

# Tokens of context the seed-style loop feeds `predict` per generated token. The original used the
# longest training line (about 20 words); 40 sits inside the 20-64 range its variants used.
SEED_WINDOW = 40

# No vocabulary cap: the seed's Keras `Tokenizer` kept every word it saw.
_ALL_WORDS = 10**9


class SeedStyleGenerator:
    """Generates with one `model.predict` call on the padded window per token.

    Args:
        model: a project model (causal: `(batch, time)` -> `(batch, time, vocab)`; BiLSTM:
            `(batch, seq_len)` -> `(batch, vocab)`), used as is so the weights are the engine's.
        window: tokens per call; a BiLSTM's fixed input length overrides it.
    """

    def __init__(self, model: Any, window: int = SEED_WINDOW, causal: bool = True) -> None:
        self.model = model
        self.window = window
        self.causal = causal

    def next_token(self, tokens: Sequence[int]) -> int:
        from keras.utils import pad_sequences

        window = pad_sequences([list(tokens[-self.window :])], maxlen=self.window, padding="pre")
        predicted = self.model.predict(window, verbose=0)
        # A causal model predicts after every position; the seed's model only had the last one.
        last = predicted[0, -1] if self.causal else predicted[0]
        return int(np.argmax(last))

    def generate(self, prompt: Sequence[int], max_tokens: int) -> list[int]:
        """`max_tokens` greedy tokens after `prompt`."""
        tokens = list(prompt)
        for _ in range(max_tokens):
            tokens.append(self.next_token(tokens))
        return tokens[len(prompt) :]


@dataclass(frozen=True)
class SeedDataShape:
    """Sizes of the seed-style training arrays for one corpus, computed without building them.

    Args:
        lines: lines of the corpus.
        samples: prefixes of two or more words (one per word after a line's first).
        vocab: `to_categorical`'s classes (the project's word ids: 4 reserved + every word seen).
        max_len: longest prefix, the padded width.
        onehot_bytes: the float64 one-hot labels, samples x vocab x 8.
        padded_bytes: the int32 padded prefixes, samples x max_len x 4.
        prefix_list_bytes: the Python lists of prefixes held while padding (list headers and slots).
    """

    lines: int
    samples: int
    vocab: int
    max_len: int
    onehot_bytes: int
    padded_bytes: int
    prefix_list_bytes: int

    @property
    def array_bytes(self) -> int:
        """Bytes of the arrays that exist together at the peak: a lower bound on resident memory."""
        return self.onehot_bytes + self.padded_bytes + self.prefix_list_bytes


def seed_lines(text: str) -> list[str]:
    """The seed's corpus: lowercased, one sample source per line."""
    return text.lower().split("\n")


def seed_data_shape(text: str) -> SeedDataShape:
    """The seed pipeline's array sizes for `text`, counted from word counts alone (cheap at any size)."""
    lines = seed_lines(text)
    splitter = WordTokenizer([])
    vocabulary: set[str] = set()
    samples = 0
    max_len = 0
    prefix_list_bytes = 0
    empty_list = sys.getsizeof([])
    for line in lines:
        words = splitter.split(line)
        vocabulary.update(words)
        count = len(words)
        if count < 2:
            continue
        samples += count - 1
        max_len = max(max_len, count)
        # Prefix lengths 2..count: a list header plus one 8-byte slot per element each.
        lengths = count * (count + 1) // 2 - 1
        prefix_list_bytes += (count - 1) * empty_list + 8 * lengths
    vocab = 4 + len(vocabulary)
    return SeedDataShape(
        lines=len(lines),
        samples=samples,
        vocab=vocab,
        max_len=max_len,
        onehot_bytes=samples * vocab * 8,
        padded_bytes=samples * max_len * 4,
        prefix_list_bytes=prefix_list_bytes,
    )


def seed_training_arrays(text: str) -> tuple[np.ndarray, np.ndarray, WordTokenizer]:
    """The seed's `(xs, ys, tokenizer)`: padded prefixes without their last word, one-hot last words."""
    from keras.utils import pad_sequences, to_categorical

    lines = seed_lines(text)
    tokenizer = WordTokenizer.fit(lines, num_words=_ALL_WORDS)
    prefixes: list[list[int]] = []
    for line in lines:
        ids = tokenizer.encode(line)
        for end in range(2, len(ids) + 1):
            prefixes.append(ids[:end])
    max_len = max(len(prefix) for prefix in prefixes)
    padded = np.array(pad_sequences(prefixes, maxlen=max_len, padding="pre"))
    del prefixes
    xs, labels = padded[:, :-1], padded[:, -1]
    ys = to_categorical(labels, num_classes=tokenizer.vocab_size)
    return xs, ys, tokenizer


def seed_fit_few_batches(xs: np.ndarray, ys: np.ndarray, vocab: int, batches: int = 3) -> None:
    """`model.fit` on the seed arrays for a few batches, as the seed trained: Keras converts the
    arrays for its data pipeline here, so this is where the peak memory is reached.

    The model is deliberately tiny (its own memory is negligible next to the data).
    """
    import keras

    model = keras.Sequential(
        [
            keras.Input(shape=(xs.shape[1],), dtype="int32"),
            keras.layers.Embedding(vocab, 16),
            keras.layers.LSTM(16),
            keras.layers.Dense(vocab, activation="softmax"),
        ]
    )
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    model.fit(xs, ys, batch_size=32, epochs=1, steps_per_epoch=batches, verbose=0)
