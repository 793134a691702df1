"""The shape of the package, checked: which layer may import which, and modules that fit a few screens.

See docs/architecture.md. `domain` and `learning` are the pure core: no files of ours, no network, no
queue, no HTTP. The layers above may use the ones below, never the reverse.
"""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parents[1] / "backend"
MAX_LINES = 400
# What each folder must never import (the dependency arrows point the other way).
FORBIDDEN = {
    "domain": {
        "storage",
        "studio",
        "queue",
        "worker",
        "server",
        "learning",
        "tracking",
        "research",
        "devtools",
        "cli",
    },
    "learning": {
        "storage",
        "studio",
        "queue",
        "worker",
        "server",
        "domain",
        "tracking",
        "research",
        "devtools",
        "cli",
    },
    "storage": {"studio", "queue", "worker", "server", "tracking", "research", "devtools", "cli"},
    "studio": {"storage", "queue", "worker", "server", "learning", "tracking", "research", "devtools", "cli"},
    "tracking": {"storage", "studio", "queue", "worker", "server", "research", "devtools", "cli"},
    "queue": {"worker", "server", "research", "devtools", "cli"},
    "worker": {"server", "research", "devtools", "cli"},
    "server": {"research", "devtools", "cli"},
    "research": {"studio", "queue", "worker", "server", "devtools", "cli"},
    "config": {"storage", "studio", "queue", "worker", "server", "tracking", "research", "devtools", "cli"},
}


def modules():
    return sorted(path for path in PACKAGE.rglob("*.py"))


def imported(path: Path) -> set[str]:
    """The backend subpackages a module imports (anywhere in it, type-checking imports included)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        found |= {
            name.split(".")[1] for name in names if name.startswith("backend.") and name.count(".") >= 1
        }
    return found


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_each_layer_imports_only_the_layers_below_it(layer):
    wrong = {
        str(path.relative_to(PACKAGE)): sorted(imported(path) & FORBIDDEN[layer])
        for path in (PACKAGE / layer).rglob("*.py")
    }
    assert {module: names for module, names in wrong.items() if names} == {}


def test_the_import_check_sees_an_import_it_must_refuse(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from backend.storage.state import StateStore\n")
    assert imported(module) == {"storage"}


def test_no_module_is_longer_than_a_few_screens():
    long = {
        str(p.relative_to(PACKAGE)): n
        for p in modules()
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}


def test_every_folder_says_what_it_is_for():
    for folder in (p for p in PACKAGE.iterdir() if p.is_dir() and p.name != "__pycache__"):
        init = folder / "__init__.py"
        assert init.exists() and ast.get_docstring(ast.parse(init.read_text())), folder.name
