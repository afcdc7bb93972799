"""The packages import each other only downwards (docs/packages.md): checked on the source, with `ast`.

Every import counts, including those inside functions and under `TYPE_CHECKING`: a deferred import is still
an arrow, and the next change tends to hoist it. So do the imports a package makes by name: the modules
named in a lazy-export table (`textgen/__init__.py`, `trainer/__init__.py`) and in `importlib.import_module`
calls with a literal name.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Who may import whom; a package may always import itself. `chatsmith` is the composition root. The
# benchmarks measure everything, so they may import everything; no package imports them.
ALLOWED: dict[str, frozenset[str]] = {
    "errortext": frozenset(),
    "textgen": frozenset({"errortext"}),
    "db": frozenset({"errortext"}),
    "trainer": frozenset({"errortext", "textgen", "db"}),
    "bot": frozenset({"errortext", "textgen", "db"}),
    "chatsmith": frozenset({"errortext", "textgen", "db", "trainer", "bot"}),
    "bench": frozenset({"errortext", "textgen", "db", "trainer", "bot", "chatsmith"}),
}

# Modules a package may not import although their package is allowed: the sub-commands of the CLI are
# its internals (what they share with others belongs in a module below them, or in `chatsmith.cli`).
FORBIDDEN_MODULES: dict[str, tuple[str, ...]] = {
    "bench": ("chatsmith.commands",),
}


def lazy_exports(tree: ast.Module) -> list[tuple[int, str, str]]:
    """(line, name, module) of every entry of a module-level lazy-export table in `tree`: a dict literal
    from exported names to the dotted modules that define them, read by a module `__getattr__`."""
    entries = []
    for node in tree.body:
        if not isinstance(node, ast.Assign | ast.AnnAssign) or not isinstance(node.value, ast.Dict):
            continue
        pairs = [
            (_string(key), _string(value), value.lineno)
            for key, value in zip(node.value.keys, node.value.values, strict=True)
        ]
        if pairs and all(name and module and _is_dotted(module) for name, module, _ in pairs):
            entries += [(line, str(name), str(module)) for name, module, line in pairs]
    return entries


def _string(node: ast.expr | None) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _is_dotted(name: str) -> bool:
    return "." in name and all(part.isidentifier() for part in name.split("."))


def imported_modules(source: str) -> list[tuple[int, str]]:
    """(line, dotted module) of every absolute import in `source`, and of every module it imports by name.

    `from a.b import c` yields both `a.b` and `a.b.c` (c may be a module or a name defined in a.b).
    """
    tree = ast.parse(source)
    found = [(line, module) for line, _, module in lazy_exports(tree)]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute | ast.Name)
            and (node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id) == "import_module"
            and node.args
            and (name := _string(node.args[0]))
        ):
            found.append((node.lineno, name))
    return found


def imported_packages(source: str) -> list[tuple[int, str]]:
    """(line, top-level package) of every import in `source`, once per import."""
    return sorted({(line, module.split(".")[0]) for line, module in imported_modules(source)})


def import_violations(root: Path) -> list[str]:
    """Every import under `root` that goes against `ALLOWED` or `FORBIDDEN_MODULES`, as
    "path:line: a imports b"."""
    violations = []
    for package, allowed in ALLOWED.items():
        forbidden = FORBIDDEN_MODULES.get(package, ())
        for path in sorted((root / package).rglob("*.py")):
            source = path.read_text(encoding="utf-8")
            where = path.relative_to(root)
            for line, target in imported_packages(source):
                if target in ALLOWED and target != package and target not in allowed:
                    violations.append(f"{where}:{line}: {package} imports {target}")
            internal: dict[int, str] = {}
            for line, module in imported_modules(source):
                if any(module == prefix or module.startswith(f"{prefix}.") for prefix in forbidden):
                    internal[line] = min(internal.get(line, module), module, key=len)
            violations += [f"{where}:{line}: {package} imports {module}" for line, module in internal.items()]
    return violations


def defines(source: str, name: str) -> bool:
    """Whether a module's top level defines or imports `name`."""
    for node in ast.parse(source).body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) and node.name == name:
            return True
        if isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(target, ast.Name) and target.id == name for target in targets):
                return True
        if isinstance(node, ast.Import | ast.ImportFrom) and any(
            (alias.asname or alias.name) == name for alias in node.names
        ):
            return True
    return False


def stale_lazy_exports(root: Path) -> list[str]:
    """Entries of the packages' lazy-export tables whose module is missing or does not define the name."""
    stale = []
    for package in ALLOWED:
        init = root / package / "__init__.py"
        if not init.exists():
            continue
        for line, name, module in lazy_exports(ast.parse(init.read_text(encoding="utf-8"))):
            path = root / Path(*module.split("."))
            source = path.with_suffix(".py") if path.with_suffix(".py").exists() else path / "__init__.py"
            if not source.exists() or not defines(source.read_text(encoding="utf-8"), name):
                stale.append(f"{init.relative_to(root)}:{line}: {name} is not in {module}")
    return stale


def test_packages_import_only_downwards() -> None:
    assert import_violations(ROOT) == []


def test_lazy_exports_name_modules_that_define_them() -> None:
    assert lazy_exports(ast.parse((ROOT / "textgen" / "__init__.py").read_text(encoding="utf-8")))
    assert stale_lazy_exports(ROOT) == []


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


def test_the_check_reads_lazy_exports_and_imports_by_name(tmp_path: Path) -> None:
    (tmp_path / "textgen").mkdir()
    (tmp_path / "textgen" / "__init__.py").write_text(
        "import importlib\n"
        "_EXPORTS = {\n"
        '    "Tokenizer": "textgen.tokenizers",\n'
        '    "Scope": "db.scopes",\n'
        "}\n"
        'NAMES = {"a": "b"}\n'
        "def later():\n"
        '    return importlib.import_module("bot.core")\n',
        encoding="utf-8",
    )
    (tmp_path / "textgen" / "tokenizers.py").write_text("class ByteTokenizer: ...\n", encoding="utf-8")

    assert import_violations(tmp_path) == [
        "textgen/__init__.py:4: textgen imports db",
        "textgen/__init__.py:8: textgen imports bot",
    ]
    assert stale_lazy_exports(tmp_path) == [
        "textgen/__init__.py:3: Tokenizer is not in textgen.tokenizers",
        "textgen/__init__.py:4: Scope is not in db.scopes",
    ]


def test_the_benchmarks_may_import_everything_but_the_cli_sub_commands(tmp_path: Path) -> None:
    (tmp_path / "bench").mkdir()
    (tmp_path / "bench" / "serving.py").write_text(
        "import bot.core\n"
        "from chatsmith.cli import build_parser\n"
        "from chatsmith.commands.textgen_commands import TEST_FRACTION\n"
        "from chatsmith import commands\n",
        encoding="utf-8",
    )
    (tmp_path / "db").mkdir()
    (tmp_path / "db" / "queries.py").write_text("from bench.report import Row\n", encoding="utf-8")

    assert sorted(import_violations(tmp_path)) == [
        "bench/serving.py:3: bench imports chatsmith.commands.textgen_commands",
        "bench/serving.py:4: bench imports chatsmith.commands",
        "db/queries.py:1: db imports bench",
    ]
