"""The packages import each other only downwards (docs/packages.md): checked on the source, with `ast`.

Every import counts, including those inside functions and under `TYPE_CHECKING`: a deferred import is still
an arrow, and the next change tends to hoist it.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Who may import whom; a package may always import itself. `chatsmith` is the composition root.
ALLOWED: dict[str, frozenset[str]] = {
    "textgen": frozenset(),
    "db": frozenset(),
    "trainer": frozenset({"textgen", "db"}),
    "bot": frozenset({"textgen", "db"}),
    "chatsmith": frozenset({"textgen", "db", "trainer", "bot"}),
}


def imported_packages(source: str) -> list[tuple[int, str]]:
    """(line, top-level package) of every absolute import in `source`."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name.split(".")[0]) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module.split(".")[0]))
    return found


def import_violations(root: Path) -> list[str]:
    """Every import under `root` that goes against `ALLOWED`, as "path:line: a imports b"."""
    violations = []
    for package, allowed in ALLOWED.items():
        for path in sorted((root / package).rglob("*.py")):
            for line, target in imported_packages(path.read_text(encoding="utf-8")):
                if target in ALLOWED and target != package and target not in allowed:
                    violations.append(f"{path.relative_to(root)}:{line}: {package} imports {target}")
    return violations


def test_packages_import_only_downwards() -> None:
    assert import_violations(ROOT) == []


def test_the_check_finds_upward_and_sideways_imports(tmp_path: Path) -> None:
    (tmp_path / "bot").mkdir()
    (tmp_path / "bot" / "adapter.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "import db.models\n"
        "if TYPE_CHECKING:\n"
        "    from chatsmith.settings import Settings\n"
        "def later():\n"
        "    import trainer.worker\n",
        encoding="utf-8",
    )
    (tmp_path / "db").mkdir()
    (tmp_path / "db" / "queries.py").write_text("from textgen.bundle import load_bundle\n", encoding="utf-8")

    assert sorted(import_violations(tmp_path)) == [
        "bot/adapter.py:4: bot imports chatsmith",
        "bot/adapter.py:6: bot imports trainer",
        "db/queries.py:1: db imports textgen",
    ]
