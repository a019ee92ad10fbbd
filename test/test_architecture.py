"""The layers of docs/ARCHITECTURE.md hold: every import of every module of the package (top-level
and inside functions, read with ast) is one its layer's row allows, the standard library, or
``espnet_hatiam.errors`` (which every layer may raise)."""

import ast
import re
import sys
from pathlib import Path
from typing import Dict, List, Optional, Set, Tuple

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "espnet_hatiam"
LAYERS = ("errors", "nets", "losses", "models", "search", "tasks", "data", "scoring", "bin")
EVERYTHING = "*"


def allowed_imports() -> Dict[str, Set[str]]:
    """``{layer: what its row's "may import" cell names}``: layers as ``espnet_hatiam.<layer>``,
    other packages by their top-level module; ``*`` for "everything above"."""
    rules: Dict[str, Set[str]] = {}
    for line in (REPO / "docs" / "ARCHITECTURE.md").read_text().splitlines():
        row = re.match(r"\|\s*`espnet_hatiam/(\w+)(?:\.py|/)`\s*\|.*\|(?P<may>[^|]*)\|\s*$", line)
        if not row:
            continue
        may = re.sub(r"\([^)]*\)", "", row["may"])  # the parentheses say which part, not what
        names = {item.strip() for item in may.split(",") if item.strip()}
        if names == {"everything above"}:
            names = {EVERYTHING}
        elif names == {"the standard library"}:
            names = set()
        rules[row[1]] = {f"espnet_hatiam.{name}" if name in LAYERS else name for name in names}
    return rules


def imports_in(source: str, package: Tuple[str, ...]) -> List[Tuple[int, str]]:
    """``(line, module)`` of every import of a module of ``package``: ``espnet_hatiam.<layer>`` for the
    package's own modules, the top-level module for the others (relative imports resolved)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = ".".join(package[: len(package) - node.level + 1]) if node.level else ""
            modules = [".".join(filter(None, [base, node.module]))]
        else:
            continue
        for module in modules:
            parts = module.split(".")
            found.append((node.lineno, ".".join(parts[:2]) if parts[0] == "espnet_hatiam" else parts[0]))
    return sorted(found)


def layer_of(path: Path) -> Optional[str]:
    parts = path.relative_to(PACKAGE).parts
    return parts[0] if len(parts) > 1 else (path.stem if path.stem in LAYERS else None)


def test_the_document_has_a_rule_for_every_layer():
    rules = allowed_imports()
    assert set(rules) == set(LAYERS), f"docs/ARCHITECTURE.md rows: {sorted(rules)}"
    assert rules["errors"] == set() and rules["bin"] == {EVERYTHING}


def test_every_import_is_one_its_layer_may_make():
    rules = allowed_imports()
    stdlib = set(sys.stdlib_module_names)
    modules = sorted(PACKAGE.rglob("*.py"))
    assert len(modules) > 40, "the package's modules were not found"
    wrong = []
    for path in modules:
        layer = layer_of(path)
        if layer is None:  # espnet_hatiam/__init__.py
            continue
        own = f"espnet_hatiam.{layer}"
        may = rules[layer] | {own, "espnet_hatiam.errors"} | stdlib
        package = path.relative_to(REPO).with_suffix("").parts[:-1]
        for line, module in imports_in(path.read_text(encoding="utf-8"), package):
            name = path.relative_to(REPO).as_posix()
            if EVERYTHING in rules[layer] or module in may:
                continue
            wrong.append(f"{name}:{line}: {layer} imports {module}")
    assert not wrong, "imports docs/ARCHITECTURE.md does not allow:\n" + "\n".join(wrong)


def test_the_checker_reads_imports_inside_functions_and_relative_ones():
    source = "import torch\n\ndef f():\n    from ..search import greedy\n    from . import hat_joint\n"
    found = imports_in(source, ("espnet_hatiam", "nets"))
    assert found == [(1, "torch"), (4, "espnet_hatiam.search"), (5, "espnet_hatiam.nets")]
    assert "espnet_hatiam.search" not in allowed_imports()["nets"]
