"""chatsmith: the composition root (settings and command line) that wires textgen, db, trainer and bot."""

__version__ = "0.1.0"
