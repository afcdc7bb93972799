"""The compiled parts of chatsmith, all on every reply's path: the one-row sampler (`textgen/_sampler.c`),
the GRU step's element-wise part (`textgen/_gru.c`) and products with float16 weights (`textgen/_halfmatmul.c`).

Everything else is declared in pyproject.toml; setuptools reads both.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension("textgen._sampler", ["textgen/_sampler.c"], extra_compile_args=["-O2", "-std=gnu11"]),
        # gcc vectorises the gate loop at -O3, and only where a comparison may not trap (no code here reads
        # floating-point exception flags).
        Extension(
            "textgen._gru",
            ["textgen/_gru.c"],
            depends=["textgen/_halfmatmul_kernels.h"],
            extra_compile_args=["-O3", "-std=gnu11", "-fno-trapping-math"],
        ),
        # Each kernel is compiled for its own instruction set (`target` attributes) and chosen at load time
        # from what the CPU has: one build runs on any x86-64 (and elsewhere, with the portable loop).
        Extension(
            "textgen._halfmatmul",
            ["textgen/_halfmatmul.c"],
            depends=["textgen/_halfmatmul_kernels.h"],
            extra_compile_args=["-O3", "-std=gnu11"],
        ),
    ],
)
