"""Text generation from a bundle: prompts in, texts out, many requests decoded as one batch.

NumPy only: `Generator.from_bundle` reads the weight arrays (`load_serving_bundle`), never TensorFlow.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from textgen.bundle import Bundle, ServingBundle, load_serving_bundle
from textgen.context import prompt_with_context
from textgen.context_states import ContextStates
from textgen.endings import end_at_boundary
from textgen.engine import make_stepper
from textgen.half_weights import halve_step_matrices
from textgen.lexicon import SPELLING_TOKENIZERS, Lexicon, LexiconConstraint, load_lexicon
from textgen.sampling import SamplingParams, plain, sample_one, sample_tokens, token_logprobs
from textgen.tokenizers import BOS_ID, EOS_ID
from textgen.utf8 import BOUNDARY, Utf8State, advance, allowed_tokens, complete
from textgen.weights import weights_from_keras, weights_nbytes

# Allowed-token masks kept per generator (260 bytes each for a byte-level model: about 130 KB).
_MASK_CACHE_LIMIT = 512


@dataclass
class _Row:
    """One request being decoded."""

    request: int
    pending: list[int]  # prompt tokens not fed yet
    params: SamplingParams
    rng: np.random.Generator
    seen: np.ndarray
    generated: list[int] = field(default_factory=list)
    text_tokens: int = 0  # generated tokens that are not whitespace alone (for `SamplingParams.min_tokens`)
    finished: bool = False
    ended: bool = False  # sampled its end of message (rather than reaching its length limit)
    utf8: Utf8State = BOUNDARY  # byte-level models: where the sampled bytes are in a character
    word: str = ""  # the word being spelled, for the lexicon (`textgen.lexicon`)
    logprob: float = 0.0  # the model's log-probability of what it sampled, its end of message included
    context_key: tuple[int, ...] | None = None  # what it reads first, while its state may be remembered
    resumed: bool = False  # started from a remembered state (`ContextStates.start`)


@dataclass(frozen=True)
class Decoded:
    """One decoded request: its token ids (end of message not included), whether it was cut at its
    length limit rather than ended by the model, and the model's mean log-probability per token."""

    ids: list[int]
    cut: bool
    mean_logprob: float


class Generator:
    """Generates text with a trained model.

    Requests are decoded together: each step runs one batched recurrent step for every unfinished
    request, and a request that reaches its end leaves the batch at once. A byte-level model samples
    only bytes that keep the text valid UTF-8 (`textgen.utf8`).
    """

    def __init__(
        self, bundle: Bundle | ServingBundle, lexicon: Lexicon | None = None, half_weights: bool = False
    ) -> None:
        """`half_weights`: decode with float16 copies of the matrices each step reads whole, as the bots
        do (`textgen.half_weights`: about twice as fast a step, logits within about 1e-2)."""
        self.bundle = bundle
        self.spec = bundle.spec
        self.tokenizer = bundle.tokenizer
        # A Keras bundle (training, evaluation) is read out into arrays once; serving bundles are arrays.
        self.weights = (
            bundle.weights
            if isinstance(bundle, ServingBundle)
            else weights_from_keras(bundle.model, bundle.spec)
        )
        if half_weights:
            self.weights = halve_step_matrices(self.weights)
        self.stepper = make_stepper(self.weights, bundle.spec)
        # Words are spelled only from the lexicon (given, else the bundle's), where tokens spell text
        # (characters, bytes, BPE pieces): every generator of one bundle decodes the same.
        if lexicon is None and bundle.path is not None:
            lexicon = load_lexicon(bundle.path)
        self.lexicon = (
            LexiconConstraint(lexicon, bundle.tokenizer)
            if lexicon is not None and bundle.tokenizer.kind in SPELLING_TOKENIZERS
            else None
        )
        # The state after each recent prompt and after its last message, so that a reply to the same
        # conversation skips reading it, and one after a new message reads only that message.
        self.contexts = ContextStates(self.stepper)
        # Tokens that are whitespace alone: a reply needs `min_tokens` others before it may end.
        self._blank = np.array(
            [not self.tokenizer.decode([token]).strip() for token in range(self.stepper.vocab_size)]
        )
        # The tokens allowed after each (UTF-8 state, word so far) seen lately: built once, not per step.
        self._masks: dict[tuple[Utf8State, str], np.ndarray] = {}

    @classmethod
    def from_bundle(cls, path: Path | str, half_weights: bool = False) -> Generator:
        """The generator of the bundle at `path`, loaded without TensorFlow (`half_weights`: see `__init__`).

        Raises:
            TextgenError: The bundle is missing or damaged (one line, naming the fix).
        """
        return cls(load_serving_bundle(path), half_weights=half_weights)

    @property
    def nbytes(self) -> int:
        """Bytes this generator holds: its weights (memory-mapped or not), the arrays derived from them,
        and its lexicon's words (what the model cache counts)."""
        lexicon = 0 if self.lexicon is None else self.lexicon.nbytes
        masks = sum(mask.nbytes for mask in self._masks.values()) + self.contexts.nbytes
        return weights_nbytes(self.weights) + self.stepper.nbytes + lexicon + masks

    def generate(
        self,
        prompt: str = "",
        max_tokens: int = 200,
        temperature: float = 0.8,
        top_k: int | None = None,
        top_p: float | None = None,
        seed: int | None = None,
        n: int = 1,
        repetition_penalty: float = 1.0,
    ) -> list[str]:
        """`n` continuations of `prompt`, each returned with the prompt in front.

        Sample `i` uses seed `seed + i`, so a seed gives the same texts every time.
        """
        params = [
            SamplingParams(
                max_tokens=max_tokens,
                temperature=temperature,
                top_k=top_k,
                top_p=top_p,
                repetition_penalty=repetition_penalty,
                seed=None if seed is None else seed + index,
            )
            for index in range(n)
        ]
        continuations = self.generate_many([prompt] * n, params)
        return [prompt + text for text in continuations]

    def generate_many(
        self,
        prompts: list[str],
        params: list[SamplingParams],
        contexts: Sequence[Sequence[str]] | None = None,
    ) -> list[str]:
        """The continuation (without the prompt) of each prompt, decoded as one batch.

        `contexts[i]`, when given, is the conversation before prompt i (oldest message first): the reply
        is that conversation's next message (`textgen.context`).
        """
        contexts = contexts if contexts is not None else [()] * len(prompts)
        if len(contexts) != len(prompts):
            raise ValueError("one context per prompt")
        decoded = self.decode_best(
            [prompt_with_context(self.tokenizer, c, p) for p, c in zip(prompts, contexts, strict=True)],
            params,
        )
        texts = []
        for result, request_params in zip(decoded, params, strict=True):
            text = self.tokenizer.decode(result.ids)
            texts.append(end_at_boundary(text) if result.cut and request_params.overrun > 0 else text)
        return texts

    def generate_tokens(self, prompts: list[list[int]], params: list[SamplingParams]) -> list[list[int]]:
        """Generated token ids per request; end-of-message is not included."""
        return [result.ids for result in self.decode_best(prompts, params)]

    def decode_best(self, prompts: list[list[int]], params: list[SamplingParams]) -> list[Decoded]:
        """Each request decoded; a request with `best_of` N samples N candidates in the same batch and
        keeps the one with the highest mean log-probability per token (`best_candidate`)."""
        if len(prompts) != len(params):
            raise ValueError("one SamplingParams per prompt")
        owners = [index for index, request in enumerate(params) for _ in range(request.best_of)]
        candidates = [
            candidate_params(request, number) for request in params for number in range(request.best_of)
        ]
        decoded = self._decode([prompts[owner] for owner in owners], candidates)
        return [
            best_candidate([result for result, owner in zip(decoded, owners, strict=True) if owner == index])
            for index in range(len(params))
        ]

    def _decode(self, prompts: list[list[int]], params: list[SamplingParams]) -> list[Decoded]:
        """Token ids per request, whether it was cut at its length limit, and its mean log-probability."""
        if len(prompts) != len(params):
            raise ValueError("one SamplingParams per prompt")
        rows = self._start_rows(prompts, params)
        results = [Decoded([], False, 0.0) for _ in prompts]
        state = self.contexts.start(rows)
        if len(rows) == 1:
            # One request, the usual case when serving: the same steps without the batch's bookkeeping.
            return [self._decode_alone(rows[0], state)]
        remembering = any(row.context_key is not None for row in rows)
        while rows:
            state = self._read_prompts(rows, state)
            if remembering:
                remembering = self.contexts.remember(rows, state)
            inputs = np.array(
                [row.pending[0] if row.pending else row.generated[-1] for row in rows], dtype=np.int64
            )
            logits, state = self.stepper.step(inputs, state)
            for row in rows:
                if row.pending:
                    row.pending.pop(0)
            if remembering:
                remembering = self.contexts.remember(rows, state)
            sampling = [position for position, row in enumerate(rows) if not row.pending]
            if sampling:
                self._sample(rows, sampling, logits if len(sampling) == len(rows) else logits[sampling])
            keep = [position for position, row in enumerate(rows) if not row.finished]
            for row in rows:
                if row.finished:
                    steps = len(row.generated) + row.ended
                    results[row.request] = Decoded(row.generated, not row.ended, row.logprob / max(1, steps))
            if len(keep) != len(rows):
                # Finished requests leave the batch at once; the others go on without waiting.
                rows = [rows[position] for position in keep]
                state = self.stepper.select(state, np.array(keep, dtype=np.int64))
        return results

    def _decode_alone(self, row: _Row, state: Any) -> Decoded:
        """`_decode` for a batch of one row."""
        state = self.contexts.read_alone(row, state)
        token = row.pending.pop()  # all but its last token is read
        step, rows, at = self.stepper.step, [row], [0]
        while True:
            logits, state = step(np.array([token], dtype=np.int64), state)
            self._sample(rows, at, logits)
            if row.finished:
                steps = len(row.generated) + row.ended
                return Decoded(row.generated, not row.ended, row.logprob / max(1, steps))
            token = row.generated[-1]

    def _start_rows(self, prompts: list[list[int]], params: list[SamplingParams]) -> list[_Row]:
        vocab = self.stepper.vocab_size
        rows = []
        for index, (prompt, request_params) in enumerate(zip(prompts, params, strict=True)):
            seen = np.zeros(vocab, dtype=bool)
            seen[[t for t in prompt if t < vocab]] = True
            row = _Row(
                index, [BOS_ID, *prompt], request_params, np.random.default_rng(request_params.seed), seen
            )
            if self.lexicon is not None:
                for token in prompt:  # a prompt that ends inside a word is continued from that word
                    row.word = self.lexicon.advance(row.word, token)
            rows.append(row)
        return rows

    def _read_prompts(self, rows: list[_Row], state: Any) -> Any:
        """The state after the tokens every row is still reading, but each row's last one (no logits are
        needed until a row has read all its prompt but that)."""
        common = min(len(row.pending) for row in rows) - 1
        if common <= 0:
            return state
        tokens = np.array([row.pending[:common] for row in rows], dtype=np.int64).T
        for column in tokens:
            state = self.stepper.read(column, state)
        for row in rows:
            del row.pending[:common]
        return state

    def _sample(self, rows: list[_Row], sampling: list[int], logits: np.ndarray) -> None:
        """Sample the next token of the rows at `sampling` (positions in `rows`) from their `logits`."""
        whole_characters = self.tokenizer.kind == "byte"
        vocab = self.stepper.vocab_size
        if len(sampling) == 1 and plain(rows[sampling[0]].params, vocab):
            # One row, the usual case when serving: compiled, token and log-probability in one call,
            # without the batch's lists and arrays (`sample_one`).
            row = rows[sampling[0]]
            masked = whole_characters or self.lexicon is not None
            allowed = self._cached_mask(row, vocab, whole_characters) if masked else None
            may_end = row.text_tokens >= row.params.min_tokens
            token, logprob = sample_one(logits[0], row.params, row.rng, allowed, may_end)
            self._take(row, token, logprob, whole_characters)
            return
        params = [rows[p].params for p in sampling]
        allowed = self._allowed([rows[p] for p in sampling], self.stepper.vocab_size, whole_characters)
        early = [i for i, p in enumerate(sampling) if rows[p].text_tokens < rows[p].params.min_tokens]
        if early:
            # A copy: `_allowed` hands out cached masks.
            shape = (len(sampling), self.stepper.vocab_size)
            allowed = (
                np.ones(shape, dtype=bool) if allowed is None else np.array(np.broadcast_to(allowed, shape))
            )
            allowed[early, EOS_ID] = False
        picked = sample_tokens(
            logits,
            params,
            [rows[p].rng for p in sampling],
            # Only the repetition penalty reads what each row has written.
            np.stack([rows[p].seen for p in sampling])
            if any(p.repetition_penalty != 1.0 for p in params)
            else None,
            allowed,
        )
        logprobs = token_logprobs(logits.astype(np.float64), picked)
        for position, token, logprob in zip(sampling, picked.tolist(), logprobs.tolist(), strict=True):
            self._take(rows[position], token, logprob, whole_characters)

    def _take(self, row: _Row, token: int, logprob: float, whole_characters: bool) -> None:
        """Append the sampled `token` to `row` (or end it), and mark the row finished when it is."""
        row.logprob += logprob
        if token == EOS_ID:
            row.finished = row.ended = True
            return
        row.generated.append(token)
        row.seen[token] = True
        row.text_tokens += not self._blank[token]
        if whole_characters:
            row.utf8 = advance(row.utf8, token)
        if self.lexicon is not None:
            row.word = self.lexicon.advance(row.word, token)
        # At the length limit a reply still ends its character, and its word (`textgen.lexicon`).
        row.finished = (
            len(row.generated) >= row.params.max_tokens * (1 + row.params.overrun)
            and complete(row.utf8)
            and (self.lexicon is None or self.lexicon.may_end(row.word))
        )

    def _allowed(self, rows: list[_Row], vocab: int, whole_characters: bool) -> np.ndarray | None:
        """(rows, vocab) booleans: the tokens each row may sample next (None: any)."""
        if not whole_characters and self.lexicon is None:
            return None
        masks = [self._cached_mask(row, vocab, whole_characters) for row in rows]
        return masks[0][None, :] if len(masks) == 1 else np.stack(masks)

    def _cached_mask(self, row: _Row, vocab: int, whole_characters: bool) -> np.ndarray:
        """(vocab,) booleans: the tokens `row` may sample next, built once per (UTF-8 state, word)."""
        key = (row.utf8, row.word)
        mask = self._masks.get(key)
        if mask is None:
            mask = allowed_tokens(row.utf8, vocab) if whole_characters else np.ones(vocab, dtype=bool)
            if self.lexicon is not None:
                mask = mask & self.lexicon.allowed(row.word)
            if len(self._masks) >= _MASK_CACHE_LIMIT:
                self._masks.clear()
            self._masks[key] = mask
        return mask


def candidate_params(request: SamplingParams, number: int) -> SamplingParams:
    """The params of candidate `number` of a best-of-N request: candidate 0 is the request itself (so
    best-of-1 decodes exactly as before); the others draw from seeds derived from the request's."""
    if number == 0:
        return replace(request, best_of=1)
    seed = None
    if request.seed is not None:
        seed = int(np.random.SeedSequence([request.seed, number]).generate_state(1)[0])
    return replace(request, best_of=1, seed=seed)


def best_candidate(candidates: list[Decoded]) -> Decoded:
    """The candidate the model finds most fluent: the highest mean log-probability per token (the first
    on a tie). An empty candidate never wins over one with text."""
    with_text = [candidate for candidate in candidates if candidate.ids] or candidates
    return max(with_text, key=lambda candidate: candidate.mean_logprob)
