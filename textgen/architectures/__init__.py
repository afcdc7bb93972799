"""Model architectures, one family per module: `recurrent` (SimpleRNN, LSTM, GRU) and `bidirectional`
(BiLSTM), looked up by name in `registry`. Importing this package does not import TensorFlow."""

from textgen.architectures.family import ArchitectureFamily, KerasLayer, Stepper, Weights
from textgen.architectures.registry import ARCHITECTURES, FAMILIES, family_of

__all__ = ["ARCHITECTURES", "FAMILIES", "ArchitectureFamily", "KerasLayer", "Stepper", "Weights", "family_of"]
