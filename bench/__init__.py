"""chatsmith benchmarks: the project against baselines run in the same script (the seed-style pipeline,
the NumPy floor, a plain Keras character model).

Run with `python -m bench [--quick] [--only NAME ...]` (or `make bench`); see `bench/cli.py` for what each
benchmark measures. Every heavy measurement runs in a fresh subprocess, so this package imports
nothing heavy itself.
"""

from bench.report import Outcome, Row
from bench.settings import RunSettings

__all__ = ["Outcome", "Row", "RunSettings"]
