"""The output filter: slurs never get out, copies are sampled again, personal data and profanity are
masked, and `/filter` sets the policy. The word lists hold the words they test for; assertions report
positions and counts, never the words."""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.core.output_filter import FALLBACK, PROMPT_REFUSED, OutputFilter
from bot.core.personal_data import mask_personal_data
from bot.core.profanity import profanity_list
from bot.core.safety import EMPTY_GENERATION
from chatsmith.wiring import bot_services
from db.filters import FilterSettings
from tests.bot.conftest import Chat, make_settings
from textgen.copyguard import CopyGuard, build_copy_guard, load_copy_guard
from textgen.lexicon import LEXICON_FILE
from textgen.slurs import contains_slur, slur_list, without_slurs
from textgen.wordlist import WordList

SLUR_LINE = "you are a nigger friend"
MEMORISED = [
    "the quick brown fox jumps over the lazy dog near the river bank today",
    "my server crashed again after the kernel update so i rolled it back",
    "please remember to water the plants on the balcony every single morning",
]
_SALAD_WORDS = [
    "apple",
    "river",
    "stone",
    "cloud",
    "green",
    "quick",
    "lamp",
    "tiger",
    "paper",
    "window",
    "music",
    "orange",
    "silver",
    "garden",
]


def _eight_grams(text: str) -> set[tuple[str, ...]]:
    words = re.findall(r"\w+", text.lower())
    return {tuple(words[i : i + 8]) for i in range(len(words) - 7)}


def copies(text: str) -> bool:
    """An independent check of the 8-word rule against `MEMORISED`, without the guard's hashes."""
    return any(_eight_grams(text) & _eight_grams(line) for line in MEMORISED)


@pytest.fixture(scope="session")
def parrot_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny model that has memorised its corpus: a slur line, three long lines, and word salad."""
    from textgen.spec import ModelSpec, TrainConfig
    from textgen.training import train_model

    rng = random.Random(0)
    salad = [" ".join(rng.choice(_SALAD_WORDS) for _ in range(rng.randint(3, 6))) for _ in range(100)]
    lines = [SLUR_LINE, *MEMORISED] * 75 + salad
    rng.shuffle(lines)
    out = tmp_path_factory.mktemp("parrot") / "parrot"
    train_model(
        lines,
        out,
        spec=ModelSpec(arch="gru", layers=1, units=128, embedding=32, seq_len=32),
        config=TrainConfig(
            batch_size=16, epochs=20, learning_rate=0.01, patience=100, val_fraction=0.1, seed=1
        ),
        tokenizer="byte",
        precision="float32",
    )
    # Served without its lexicon (as an older bundle or a word-level model would be), it spells the slur,
    # and only the output filter stands between it and the channel. The lexicon is kept aside for the
    # test that shows it alone keeps the slur out.
    (out / LEXICON_FILE).rename(out.parent / LEXICON_FILE)
    return out


@pytest.fixture
def parrot_chat(tmp_path: Path, parrot_bundle: Path) -> Iterator[Chat]:
    """The whole bot on the console, with the parrot as the base model."""
    services = bot_services(make_settings(tmp_path / "data", parrot_bundle), migrate_new_database=True)
    chat = Chat(services, tmp_path / "files")
    yield chat
    chat.close()
    services.close()


# ------------------------------------------------------------------ word lists


def test_slur_list_matches_the_ways_round_a_list_and_not_innocent_words() -> None:
    for written in (
        "NIGGER",
        "n1gger",
        "n i g g e r",
        "n.i.g.g.e.r",
        "nïgger",
        "n\u200bigger",
        "niggers!",
        "faggots",
    ):
        assert contains_slur(f"well {written} there"), f"missed a spelling of length {len(written)}"
    for innocent in ("sniggering at it", "Niger and Nigeria", "a spicy dish", "Scunthorpe", "cocktail", ""):
        assert not contains_slur(innocent)


def test_word_list_spans_point_into_the_original_text() -> None:
    words = WordList.from_lines(["# comment", "darn*", "heck"])
    text = "Ünïcode DARNED thing, h3ck!"
    assert [text[a:b] for a, b in words.spans(text)] == ["DARNED", "h3ck"]
    assert not words.contains("checking heckle")


def test_without_slurs_drops_whole_messages_and_counts_them() -> None:
    kept, dropped = without_slurs(["hello", SLUR_LINE, "fine day"])
    assert kept == ["hello", "fine day"] and dropped == 1


def test_profanity_list_is_the_plain_word_list() -> None:
    assert profanity_list().contains("what the fuck") and not profanity_list().contains("shiitake class")
    assert not slur_list().contains("what the fuck")


# ------------------------------------------------------------------ personal data


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mail jo.smith+x@example.co.uk now", "mail [email] now"),
        # Generated text runs on past an address without a space: it is still masked.
        (
            "mail ann@example.org_dx and bo@corp.io2 or cy@site.deé",
            "mail [email]_dx and [email]2 or [email]é",
        ),
        ("call +1 (555) 123-4567 or 07700 900123", "call [phone] or [phone]"),
        # ... and so is a number it runs on past.
        ("call +1 555 123 4567-\x10eA or 07700 900123ab_", "call [phone]-\x10eA or [phone]ab_"),
        # Card numbers pass the Luhn check, grouped or not; a 16-digit order number that fails it stays.
        (
            "card 4111 1111 1111 1111, 4111-1111-1111-1111x, 3782 822463 10005 or 378282246310005; "
            "order 1234 5678 9012 3456",
            "card [card], [card]x, [card] or [card]; order 1234 5678 9012 3456",
        ),
        ("see https://x.io/cb?token=abc123&page=2", "see https://x.io/cb?token=[redacted]&page=2"),
        ("https://bob:hunter2@db.example.com/x", "https://[redacted]@db.example.com/x"),
        ("key sk_live_4eC39HqLyjWDarjtT1zdp7dc ok", "key [key] ok"),
        ("xoxb-12345678901-abcdefghijkl and AKIAIOSFODNN7EXAMPLE", "[key] and [key]"),
        ("token 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", "token [key]"),
    ],
)
def test_personal_data_is_masked(text: str, expected: str) -> None:
    assert mask_personal_data(text)[0] == expected


def test_a_card_is_only_digits_in_the_groups_cards_are_printed_in() -> None:
    # A size, then a date: 4096 2006-02-19 0 passes the Luhn check, split as no card is printed.
    assert "[card]" not in mask_personal_data("drwxr-xr-x  3 root root 4096 2006-02-19 04:30 /nas")[0]
    assert mask_personal_data("4111 1111-1111 1111")[0] != "[card]"


def test_ordinary_chat_numbers_and_links_stay() -> None:
    text = (
        "kernel 2.6.12-9-386 on 2019-09-04 at 22:44:46, ip 192.168.1.100, port 8080, "
        "https://stripe.com/docs/api/subscriptions/create#create_subscription-coupon"
    )
    assert mask_personal_data(text) == (text, 0)


# ------------------------------------------------------------------ copy guard


def test_copy_guard_finds_eight_words_or_sixty_characters_of_one_message() -> None:
    url = "https://example.com/" + "a1b2c3d4e5" * 8
    guard = build_copy_guard([MEMORISED[0], url, "short line"])
    assert guard.copied("so the quick brown fox jumps over the lazy dog, he said") == "words"
    assert guard.copied("quick brown fox jumps over the lazy") is None  # 7 words
    assert guard.copied(f"look {url[3:73]} there") == "chars"  # 70 characters, no spaces
    # A prompt is the user's own: a copy must reach into what the model wrote.
    prompt = "the quick brown fox jumps over the lazy dog"
    assert guard.copied(prompt + " and more", after=len(prompt) + 1) is None
    # Runs across two messages are not copies of one.
    assert (
        build_copy_guard(["one two three four", "five six seven eight"]).copied(
            "one two three four five six seven eight"
        )
        is None
    )


@pytest.mark.slow
def test_copy_guard_round_trips_through_a_bundle(parrot_bundle: Path, tmp_path: Path) -> None:
    guard = load_copy_guard(parrot_bundle)
    assert isinstance(guard, CopyGuard) and guard.copied(MEMORISED[1]) == "words"
    assert load_copy_guard(tmp_path) is None
    (tmp_path / "copyguard.npz").write_bytes(b"not numpy")
    with pytest.raises(Exception, match="retrain the model"):
        load_copy_guard(tmp_path)


# ------------------------------------------------------------------ the filter


def test_policies_off_mask_block_and_own_words() -> None:
    text = "this shit is flarb, write to ann@example.org"
    off = OutputFilter(FilterSettings("off", ("flarb",))).check(text)
    assert off.text == "this shit is f****, write to [email]" and off.blocked is None
    masked = OutputFilter(FilterSettings("mask")).check(text)
    assert masked.text == "this s*** is flarb, write to [email]" and masked.masked == 2
    assert OutputFilter(FilterSettings("block")).check(text).blocked == "profanity"
    assert OutputFilter(FilterSettings("block", ("flarb",))).check("a flarb").blocked == "own words"
    assert OutputFilter(FilterSettings("off")).check(f"ok {SLUR_LINE}").blocked == "slur"


@pytest.mark.slow
def test_a_slur_never_gets_through_the_bot(parrot_bundle: Path, parrot_chat: Chat) -> None:
    from textgen.generator import Generator

    # The line's opening words lead the model into the slur: a prompt any member could type.
    raw = Generator.from_bundle(parrot_bundle).generate(
        "you are", max_tokens=40, temperature=0.3, n=60, seed=0
    )
    assert sum(contains_slur(text) for text in raw) >= 4, (
        "the model must write the slur for this test to mean anything"
    )
    ann = parrot_chat.user("ann")
    replies = [ann.say("/generate you are length:40 temperature:0.3") for _ in range(25)]
    leaked = [index for index, reply in enumerate(replies) if contains_slur(reply)]
    assert leaked == []
    counts = parrot_chat.services.filter_stats.get("console", "team")
    assert counts.replies == 25 and counts.resampled + counts.fallbacks > 0
    # A prompt with a slur is refused rather than echoed.
    assert ann.say(f"/generate {SLUR_LINE}") == PROMPT_REFUSED


@pytest.mark.slow
def test_a_lexicon_alone_keeps_the_slur_out(parrot_bundle: Path) -> None:
    from textgen.bundle import load_serving_bundle
    from textgen.generator import Generator
    from textgen.lexicon import load_lexicon

    lexicon = load_lexicon(parrot_bundle.parent)
    assert lexicon is not None and "you" in lexicon
    assert not any(contains_slur(word) for word in lexicon.words)
    texts = Generator(load_serving_bundle(parrot_bundle), lexicon).generate(
        "you are", max_tokens=40, temperature=0.3, n=60, seed=0
    )
    assert not any(contains_slur(text) for text in texts)
    assert any(len(text) > len("you are") + 5 for text in texts)


@pytest.mark.slow
def test_copies_of_a_memorised_corpus_are_resampled(parrot_bundle: Path, parrot_chat: Chat) -> None:
    from textgen.generator import Generator

    raw = Generator.from_bundle(parrot_bundle).generate("", max_tokens=80, temperature=0.3, n=60, seed=1)
    assert sum(copies(text) for text in raw) >= 3, "the model must copy for this test to mean anything"
    ann = parrot_chat.user("ann")
    replies = [ann.say("/generate length:80 temperature:0.3") for _ in range(30)]
    copied = [index for index, reply in enumerate(replies) if copies(reply)]
    assert copied == []
    assert sum(reply != FALLBACK for reply in replies) > 0, "some replies should pass after resampling"


def test_admin_sets_the_policy_and_words_and_status_counts(chat: Chat) -> None:
    admin, ann = chat.user("boss", admin=True), chat.user("ann")
    assert "is for admins" in ann.say("/filter block")
    shown = admin.say("/filter")
    assert "Profanity policy here: mask" in shown and "Slurs are always blocked" in shown
    assert "policy here: block" in admin.say("/filter block")
    assert "(2): f****, z*****" in admin.say("/filter add flarb, zonkle")
    assert "(1): z*****" in admin.say("/filter remove flarb")
    assert "Unknown filter action" in admin.say("/filter sometimes")
    assert "takes no words" in admin.say("/filter off please")
    assert ann.say("/generate this shit") == PROMPT_REFUSED
    admin.say("/filter mask")
    # The tiny model now and then ends its message at once ("nothing to say", nothing echoed): ask again.
    asked = 0
    for asked in range(1, 6):  # noqa: B007 (read after the loop)
        reply = ann.say("/generate this shit zonkle mail ann@example.org")
        if reply != EMPTY_GENERATION:
            break
    assert reply.startswith("this s*** z***** mail [email]")
    assert f"{asked} replies, 0 resampled, 1 masked" in ann.say("/status")


def test_corpus_and_reply_hash_alike() -> None:
    # A corpus is hashed offset by offset, a reply with one matrix product: both must give one hash.
    rng = random.Random(3)
    messages = ["".join(rng.choice("abcdefghij0123456789/") for _ in range(90)) for _ in range(100)]
    words = [" ".join(rng.choice(_SALAD_WORDS) for _ in range(12)) + f" {i}" for i in range(600)]
    guard = build_copy_guard(messages + words)
    assert all(guard.copied(f"see {message[5:80]}") == "chars" for message in messages)
    assert all(guard.copied(f"so {line}") == "words" for line in words[::50])
