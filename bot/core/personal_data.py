"""Personal data never leaves in a reply: emails, phone numbers, payment card numbers, URLs that carry
secrets, API keys.

Training already scrubs some of these (`db.scrub`), but a model can still put one together, and a bundle
may come from a corpus nobody scrubbed; replies are masked on their own. Each kind becomes a bracketed
placeholder so readers see that something was taken out.
"""

from __future__ import annotations

import re

# Keys with a known shape: Stripe, Slack, GitHub, GitLab, AWS access key ids, Google API keys, OpenAI-style
# `sk-`, JSON web tokens. Checked before the generic rule so they are masked whole.
_KNOWN_KEY = re.compile(
    r"\b(?:(?:sk|pk|rk)_(?:live|test)_[A-Za-z0-9]{8,}|whsec_[A-Za-z0-9]{16,}|xox[abposr]-[A-Za-z0-9-]{10,}"
    r"|xapp-[A-Za-z0-9-]{10,}|gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,}|glpat-[A-Za-z0-9_-]{20,}"
    r"|AKIA[0-9A-Z]{16}|AIza[0-9A-Za-z_-]{35}|sk-[A-Za-z0-9_-]{20,}"
    r"|eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,})"
)
# Anything else that looks like a secret: a run of 32+ letters, digits, `_` or `-` with letters and
# digits mixed (keys, tokens, long hex hashes; no word of any language looks like that).
_LONG_TOKEN = re.compile(r"(?<![A-Za-z0-9_-])[A-Za-z0-9_-]{32,}(?![A-Za-z0-9_-])")
# The top-level domain ends where its letters do: a reply that runs on past an address without a space
# ("ann@example.org_d", "...org2") still has it masked.
_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}(?![A-Za-z])")
# URLs that carry credentials: `user:password@` in front, or a query parameter named like a secret.
_URL = re.compile(r"\b(?:https?|ftp|wss?)://[^\s<>\"']+", re.IGNORECASE)
_URL_USERINFO = re.compile(r"^([a-z]+://)[^/@\s]+@", re.IGNORECASE)
_SECRET_PARAM = re.compile(
    r"([?&#;](?:[\w.-]*(?:token|key|secret|sig|signature|password|passwd|pwd|auth|session|sid|code|"
    r"credential)[\w.-]*)=)[^&#\s]+",
    re.IGNORECASE,
)
# Phone and card numbers start at a word's start: not inside a word, a version ("v1.2") or a sum ("2+3").
# (Letting them start right after a letter changed only model numbers in real chat, "BCM4306 802.11b".)
_NOT_INSIDE_A_WORD_OR_NUMBER = r"(?<![\w.+-])"
# Phone numbers: an optional country code, then groups of digits split by spaces, dots, dashes or a
# bracketed area code; 9 to 15 digits in all, so versions, dates, times and addresses stay. A number
# ends where its digits do: generated text that runs on past one ("4567-x", "4567ab") still has it masked.
_PHONE = re.compile(
    _NOT_INSIDE_A_WORD_OR_NUMBER
    + r"(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,4}\)[ .-]?)?\d{2,6}(?:[ .-]\d{2,6}){1,4}(?!\d)"
)
# Payment card numbers: 14 to 19 digits run together, or in the groups cards are printed in (4-4-4-4 with
# up to 3 more, Amex's 4-6-5) split by one kind of separator, that pass the Luhn check every card number
# carries. Numbers split any other way ("4096 2006-02-19") are sizes, dates and ids. Checked before phone
# numbers, which stop at 15 digits.
_CARD = re.compile(
    _NOT_INSIDE_A_WORD_OR_NUMBER
    + r"(?:\d{14,19}|\d{4}([ -])\d{4}\1\d{4}\1\d{4}(?:\1\d{1,3})?|\d{4}([ -])\d{6}\2\d{4,5})(?!\d)"
)
_IPV4 = re.compile(r"^\d{1,3}(?:\.\d{1,3}){3}$")
_DATE = re.compile(r"^\d{4}[-./]\d{1,2}[-./]\d{1,2}$|^\d{1,2}[-./]\d{1,2}[-./]\d{2,4}$")

EMAIL = "[email]"
PHONE = "[phone]"
CARD = "[card]"
KEY = "[key]"
REDACTED = "[redacted]"


def _mask_url(match: re.Match[str]) -> str:
    url = _URL_USERINFO.sub(lambda m: f"{m.group(1)}{REDACTED}@", match.group())
    return _SECRET_PARAM.sub(lambda m: f"{m.group(1)}{REDACTED}", url)


def _luhn_valid(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char) * (2 if position % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


def _mask_card(match: re.Match[str]) -> str:
    text = match.group()
    return CARD if _luhn_valid("".join(char for char in text if char.isdigit())) else text


def _mask_phone(match: re.Match[str]) -> str:
    text = match.group()
    digits = sum(char.isdigit() for char in text)
    if not 9 <= digits <= 15 or _IPV4.match(text) or _DATE.match(text):
        return text
    return PHONE


def _mask_long_token(match: re.Match[str]) -> str:
    text = match.group()
    has_digit = any(char.isdigit() for char in text)
    has_letter = any(char.isalpha() for char in text)
    return KEY if has_digit and has_letter else text


def mask_personal_data(text: str) -> tuple[str, int]:
    """`text` with personal data replaced by placeholders, and how many were replaced."""
    count = 0

    def counted(replace):  # type: ignore[no-untyped-def]
        def wrapper(match: re.Match[str]) -> str:
            nonlocal count
            out = replace(match) if callable(replace) else replace
            if out != match.group():
                count += 1
            return out

        return wrapper

    text = _KNOWN_KEY.sub(counted(KEY), text)
    text = _URL.sub(counted(_mask_url), text)
    text = _EMAIL.sub(counted(EMAIL), text)
    text = _LONG_TOKEN.sub(counted(_mask_long_token), text)
    text = _CARD.sub(counted(_mask_card), text)
    text = _PHONE.sub(counted(_mask_phone), text)
    return text, count
