"""The compiled parts of chatsmith, both on every reply's path: the one-row sampler (`textgen/_sampler.c`) and
the GRU step's element-wise part (`textgen/_gru.c`).

Everything else is declared in pyproject.toml; setuptools reads both.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension("textgen._sampler", ["textgen/_sampler.c"], extra_compile_args=["-O2", "-std=gnu11"]),
        # gcc vectorises the gate loop at -O3, and only where a comparison may not trap (no code here reads
        # floating-point exception flags).
        Extension(
            "textgen._gru", ["textgen/_gru.c"], extra_compile_args=["-O3", "-std=gnu11", "-fno-trapping-math"]
        ),
    ],
)
