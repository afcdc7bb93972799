"""Every architecture a `ModelSpec` may name, and the family that builds, lays out and decodes it.

Adding an architecture: write its family (a module beside this one, satisfying
`textgen.architectures.family.ArchitectureFamily`) and add it to `FAMILIES`.
"""

from __future__ import annotations

from textgen.architectures.bidirectional import BIDIRECTIONAL_LSTM
from textgen.architectures.family import ArchitectureFamily
from textgen.architectures.recurrent import GRU, LSTM, SIMPLE_RNN
from textgen.errors import TextgenError

FAMILIES: dict[str, ArchitectureFamily] = {
    family.arch: family for family in (SIMPLE_RNN, LSTM, GRU, BIDIRECTIONAL_LSTM)
}

# The names `ModelSpec.arch` (and `chatsmith train --arch`) accept, in the order help lists them.
ARCHITECTURES = tuple(FAMILIES)


def family_of(arch: str) -> ArchitectureFamily:
    """The family of the architecture named `arch`.

    Raises:
        TextgenError: No family answers to `arch`.
    """
    family = FAMILIES.get(arch)
    if family is None:
        raise TextgenError(f"unknown architecture {arch!r}; use one of: {', '.join(ARCHITECTURES)}")
    return family
