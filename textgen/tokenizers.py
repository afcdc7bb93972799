"""Tokenizers: text <-> token ids, each saved to and loaded from JSON.

Every tokenizer reserves the same four ids so that datasets, models and the generation engine never
special-case one: 0 padding, 1 begin-of-message, 2 end-of-message, 3 unknown. A message is encoded as
`BOS text EOS`; a corpus is the concatenation of its messages.

- `ByteTokenizer` (the default): UTF-8 bytes. The vocabulary never depends on the corpus, so a model
  trained on one channel can be fine-tuned on another (their token ids agree), and any text
  (emoji, accents, zero-width and right-to-left characters) round-trips exactly.
- `CharTokenizer`: one id per character seen in the corpus, unknown characters map to UNK.
- `WordTokenizer`: the seed project's word-level scheme (lowercase, punctuation filter, `num_words`,
  an out-of-vocabulary token). Lossy: decoding joins words with spaces.
- `BpeTokenizer`: byte-level BPE (the `tokenizers` library), its merges learned from the training text:
  lossless like bytes, with fewer tokens per character. Its vocabulary depends on the corpus, so a
  model fine-tuned from it keeps its parent's merges.
"""

from __future__ import annotations

import collections
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from textgen.errors import TextgenError

PAD_ID = 0
BOS_ID = 1
EOS_ID = 2
UNK_ID = 3
NUM_SPECIAL = 4
SPECIAL_NAMES = ("<pad>", "<bos>", "<eos>", "<unk>")


class Tokenizer:
    """Base class: the shared special ids, message framing and JSON persistence."""

    kind: ClassVar[str] = ""
    pad_id = PAD_ID
    bos_id = BOS_ID
    eos_id = EOS_ID
    unk_id = UNK_ID

    @property
    def vocab_size(self) -> int:
        raise NotImplementedError

    def encode(self, text: str) -> list[int]:
        """Token ids of `text`, without message framing."""
        raise NotImplementedError

    def decode(self, ids: Iterable[int]) -> str:
        """Text of `ids`; special tokens are dropped."""
        raise NotImplementedError

    def get_config(self) -> dict[str, Any]:
        return {}

    def encode_messages(self, messages: Iterable[str]) -> np.ndarray:
        """One int32 token stream: `BOS m1 EOS BOS m2 EOS ...`."""
        stream: list[int] = []
        for message in messages:
            stream.append(BOS_ID)
            stream.extend(self.encode(message))
            stream.append(EOS_ID)
        return np.asarray(stream, dtype=np.int32)

    def to_json(self) -> str:
        return json.dumps({"kind": self.kind, "config": self.get_config()}, ensure_ascii=False)

    def save(self, path: Path) -> None:
        Path(path).write_text(self.to_json(), encoding="utf-8")


class ByteTokenizer(Tokenizer):
    """UTF-8 bytes shifted past the special ids: a fixed vocabulary of 260 tokens."""

    kind = "byte"

    @property
    def vocab_size(self) -> int:
        return NUM_SPECIAL + 256

    def encode(self, text: str) -> list[int]:
        return [byte + NUM_SPECIAL for byte in text.encode("utf-8")]

    def encode_messages(self, messages: Iterable[str]) -> np.ndarray:
        """`BOS m1 EOS BOS m2 EOS ...` built with array operations: a chat log of 200k messages is
        encoded in a fraction of a second rather than seconds of a time budget."""
        encoded = [message.encode("utf-8") for message in messages]
        lengths = np.fromiter((len(data) for data in encoded), dtype=np.int64, count=len(encoded))
        stream = np.empty(int(lengths.sum()) + 2 * len(encoded), dtype=np.int32)
        frame_starts = np.cumsum(lengths + 2) - (lengths + 2)
        frame_ends = frame_starts + lengths + 1
        text = np.ones(len(stream), dtype=bool)
        text[frame_starts] = text[frame_ends] = False
        stream[frame_starts], stream[frame_ends] = BOS_ID, EOS_ID
        stream[text] = np.frombuffer(b"".join(encoded), dtype=np.uint8).astype(np.int32) + NUM_SPECIAL
        return stream

    def decode(self, ids: Iterable[int]) -> str:
        data = bytes(i - NUM_SPECIAL for i in ids if NUM_SPECIAL <= i < NUM_SPECIAL + 256)
        # A sample can stop in the middle of a multi-byte character; show a replacement mark there.
        return data.decode("utf-8", errors="replace")


class CharTokenizer(Tokenizer):
    """One id per character of a vocabulary built from a corpus."""

    kind = "char"

    def __init__(self, chars: Sequence[str]) -> None:
        self.chars = list(chars)
        self._ids = {char: index + NUM_SPECIAL for index, char in enumerate(self.chars)}

    @classmethod
    def fit(cls, texts: Iterable[str], max_chars: int | None = None) -> CharTokenizer:
        counts: collections.Counter[str] = collections.Counter()
        for text in texts:
            counts.update(text)
        most_common = counts.most_common(max_chars)
        return cls(sorted(char for char, _ in most_common))

    @property
    def vocab_size(self) -> int:
        return NUM_SPECIAL + len(self.chars)

    def encode(self, text: str) -> list[int]:
        ids = self._ids
        return [ids.get(char, UNK_ID) for char in text]

    def decode(self, ids: Iterable[int]) -> str:
        chars = self.chars
        return "".join(chars[i - NUM_SPECIAL] for i in ids if NUM_SPECIAL <= i < self.vocab_size)

    def get_config(self) -> dict[str, Any]:
        return {"chars": self.chars}


# The punctuation Keras' legacy `Tokenizer` filtered by default, as the seed project used it.
SEED_FILTERS = '!"#$%&()*+,-./:;<=>?@[\\]^_`{|}~\t\n'


class WordTokenizer(Tokenizer):
    """The seed's word-level tokenizer: lowercase, strip punctuation, keep the `num_words` most frequent."""

    kind = "word"

    def __init__(self, words: Sequence[str], filters: str = SEED_FILTERS, lower: bool = True) -> None:
        self.words = list(words)
        self.filters = filters
        self.lower = lower
        self._ids = {word: index + NUM_SPECIAL for index, word in enumerate(self.words)}
        self._table = str.maketrans({char: " " for char in filters})

    def split(self, text: str) -> list[str]:
        if self.lower:
            text = text.lower()
        return text.translate(self._table).split()

    @classmethod
    def fit(cls, texts: Iterable[str], num_words: int = 10000, filters: str = SEED_FILTERS) -> WordTokenizer:
        if num_words < 1:
            raise TextgenError(f"num_words must be at least 1, received {num_words}; pass a positive number")
        splitter = cls([], filters=filters)
        counts: collections.Counter[str] = collections.Counter()
        for text in texts:
            counts.update(splitter.split(text))
        # Ties broken alphabetically so that the same corpus always gives the same ids.
        ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:num_words]
        return cls([word for word, _ in ranked], filters=filters)

    @property
    def vocab_size(self) -> int:
        return NUM_SPECIAL + len(self.words)

    def encode(self, text: str) -> list[int]:
        ids = self._ids
        return [ids.get(word, UNK_ID) for word in self.split(text)]

    def decode(self, ids: Iterable[int]) -> str:
        words = []
        for i in ids:
            if i == UNK_ID:
                words.append("<unk>")
            elif NUM_SPECIAL <= i < self.vocab_size:
                words.append(self.words[i - NUM_SPECIAL])
        return " ".join(words)

    def get_config(self) -> dict[str, Any]:
        return {"words": self.words, "filters": self.filters, "lower": self.lower}


# Tokens of a byte-level BPE vocabulary (the four special ids and the 256 bytes included): about 2.5
# characters per token on chat, with an output layer four times the byte model's.
DEFAULT_BPE_VOCAB = 1024
# The characters of training text a BPE vocabulary is learned from, at most (the newest of the training
# part, `textgen.training`): learning costs time and memory that grow with the text (0.36 CPU-s per million
# characters), and 1,024 tokens are settled long before. On the Ubuntu IRC log, a vocabulary learned from
# its newest 0.5 M characters encodes its test part in as few tokens as one learned from all 9.1 M (2.587
# against 2.583 characters per token; bench/logs/bpe-fit-chars-2026-12-06.txt).
BPE_FIT_CHARS = 10_000_000
BPE_MISSING = (
    "the bpe tokenizer needs the tokenizers package; install it with: pip install 'tokenizers>=0.20'"
)


def _bpe_library() -> Any:
    try:
        import tokenizers
    except ImportError:
        raise TextgenError(BPE_MISSING) from None
    return tokenizers


class BpeTokenizer(Tokenizer):
    """Byte-level BPE: text as UTF-8 bytes, frequent byte sequences of the training text merged into
    single tokens. Every byte is in the vocabulary, so any text round-trips exactly (no unknown token).

    Args:
        model: the `tokenizers` library's JSON of the trained tokenizer (`BpeTokenizer.fit`).
    """

    kind = "bpe"

    # The entries at the special ids. Not the library's special tokens, which it finds in the text
    # itself (a message saying "<eos>" would end there): plain vocabulary entries, spelled with a
    # character the byte-level alphabet lacks, so no text encodes to them.
    RESERVED = tuple(f"\u2400{name}" for name in SPECIAL_NAMES)

    def __init__(self, model: str) -> None:
        self.model = model
        self._tokenizer = _bpe_library().Tokenizer.from_str(model)
        reserved = [self._tokenizer.token_to_id(name) for name in self.RESERVED]
        if reserved != list(range(NUM_SPECIAL)) or self._tokenizer.get_added_tokens_decoder():
            raise TextgenError("saved bpe tokenizer does not reserve the special ids; train the model again")

    @classmethod
    def fit(cls, texts: Iterable[str], vocab_size: int = DEFAULT_BPE_VOCAB) -> BpeTokenizer:
        """Merges learned from `texts` (the training part only) up to `vocab_size` tokens."""
        library = _bpe_library()
        byte_level = library.pre_tokenizers.ByteLevel
        if vocab_size < NUM_SPECIAL + len(byte_level.alphabet()):
            raise TextgenError(f"a bpe vocabulary needs at least 260 tokens, received {vocab_size}")
        tokenizer = library.Tokenizer(library.models.BPE())
        # No prefix space: the text is encoded as it is, so decoding gives it back byte for byte.
        tokenizer.pre_tokenizer = byte_level(add_prefix_space=False)
        tokenizer.decoder = library.decoders.ByteLevel()
        trainer = library.trainers.BpeTrainer(
            vocab_size=vocab_size,
            special_tokens=list(cls.RESERVED),  # ids 0-3, in this order
            initial_alphabet=byte_level.alphabet(),
            show_progress=False,
        )
        tokenizer.train_from_iterator(texts, trainer=trainer)
        saved = json.loads(tokenizer.to_str())
        saved["added_tokens"] = []  # kept in the vocabulary only (see `RESERVED`)
        return cls(json.dumps(saved, ensure_ascii=False))

    @property
    def vocab_size(self) -> int:
        return int(self._tokenizer.get_vocab_size())

    def encode(self, text: str) -> list[int]:
        return list(self._tokenizer.encode(text, add_special_tokens=False).ids)

    def encode_messages(self, messages: Iterable[str]) -> np.ndarray:
        """`BOS m1 EOS BOS m2 EOS ...`, the messages encoded in one batch by the library's threads."""
        encoded = self._tokenizer.encode_batch(list(messages), add_special_tokens=False)
        stream: list[int] = []
        for encoding in encoded:
            stream.append(BOS_ID)
            stream.extend(encoding.ids)
            stream.append(EOS_ID)
        return np.asarray(stream, dtype=np.int32)

    def decode(self, ids: Iterable[int]) -> str:
        # Special tokens dropped; a sample that stops inside a character shows a replacement mark there.
        return str(self._tokenizer.decode([i for i in ids if i >= NUM_SPECIAL], skip_special_tokens=True))

    def get_config(self) -> dict[str, Any]:
        return {"model": self.model}


TOKENIZER_KINDS: dict[str, type[Tokenizer]] = {
    "byte": ByteTokenizer,
    "char": CharTokenizer,
    "word": WordTokenizer,
    "bpe": BpeTokenizer,
}


def build_tokenizer(kind: str, texts: Sequence[str], num_words: int = 10000) -> Tokenizer:
    """A tokenizer of `kind` ("byte", "char", "word" or "bpe"), fitted on `texts` where the kind needs it."""
    if kind == "byte":
        return ByteTokenizer()
    if kind == "char":
        return CharTokenizer.fit(texts)
    if kind == "bpe":
        return BpeTokenizer.fit(texts)
    if kind == "word":
        return WordTokenizer.fit(texts, num_words=num_words)
    raise TextgenError(f"unknown tokenizer {kind!r}; use one of: {', '.join(TOKENIZER_KINDS)}")


def tokenizer_from_json(text: str) -> Tokenizer:
    """Rebuild a tokenizer saved with `Tokenizer.to_json()`."""
    data = json.loads(text)
    kind = data.get("kind")
    if kind not in TOKENIZER_KINDS:
        raise TextgenError(
            f"unknown tokenizer kind {kind!r} in saved tokenizer; expected one of {list(TOKENIZER_KINDS)}"
        )
    cls = TOKENIZER_KINDS[kind]
    return cls(**data.get("config", {}))


def load_tokenizer(path: Path) -> Tokenizer:
    return tokenizer_from_json(Path(path).read_text(encoding="utf-8"))
