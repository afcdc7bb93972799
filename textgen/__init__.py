"""textgen: the machine-learning core. Tokenizers, model specs and builders, streaming datasets,
training, evaluation, bundles and generation. Knows nothing of chat platforms or databases."""

from textgen.bundle import Bundle, load_bundle, save_bundle
from textgen.corpus import Corpus, load_corpus, parse_corpus
from textgen.errors import TextgenError
from textgen.evaluate import Evaluation, evaluate_messages
from textgen.generator import Generator
from textgen.model import build_model
from textgen.sampling import SamplingParams
from textgen.spec import ModelSpec, TrainConfig
from textgen.tokenizers import ByteTokenizer, CharTokenizer, Tokenizer, WordTokenizer, build_tokenizer
from textgen.training import TrainingProgress, TrainResult, train_model

__all__ = [
    "Bundle",
    "ByteTokenizer",
    "CharTokenizer",
    "Corpus",
    "Evaluation",
    "Generator",
    "ModelSpec",
    "SamplingParams",
    "TextgenError",
    "Tokenizer",
    "TrainConfig",
    "TrainResult",
    "TrainingProgress",
    "WordTokenizer",
    "build_model",
    "build_tokenizer",
    "evaluate_messages",
    "load_bundle",
    "load_corpus",
    "parse_corpus",
    "save_bundle",
    "train_model",
]
