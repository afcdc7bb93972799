"""Print chatsmith's runtime requirements from pyproject.toml, one per line, for the image's cached layer.

Usage: `python requirements.py [bot|cpu|cuda] [PYPROJECT]`. `bot` is the dependencies alone (the bots
decode with NumPy: no TensorFlow); `cpu` adds the `train` extra (TensorFlow's CPU wheels), `cuda` the `cuda`
extra (TensorFlow with the CUDA libraries). The Dockerfile installs these before copying the code, so a
code change does not reinstall TensorFlow; only pyproject.toml feeds this layer (not README.md, which the
package build reads).
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

VARIANTS = {"bot": (), "cpu": ("train",), "cuda": ("cuda",)}


def requirements(variant: str, pyproject: Path) -> list[str]:
    """The dependencies of `variant`, as pip requirement strings.

    Raises:
        SystemExit: An unknown variant; the message names the valid ones.
    """
    if variant not in VARIANTS:
        raise SystemExit(f"error: unknown TENSORFLOW_VARIANT {variant!r}; use one of: {', '.join(VARIANTS)}")
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    lines = list(project["dependencies"])
    for extra in VARIANTS[variant]:
        lines.extend(project["optional-dependencies"][extra])
    return lines


if __name__ == "__main__":
    variant = sys.argv[1] if len(sys.argv) > 1 else "cpu"
    path = Path(sys.argv[2]) if len(sys.argv) > 2 else Path("pyproject.toml")
    print("\n".join(requirements(variant, path)))
