"""The shape of the package, checked: which layer may import which, and modules that fit a few screens.

See docs/architecture.md. `domain` and `learning` are the pure core: no files of ours, no network, no
queue, no HTTP. The layers above may use the ones below, never the reverse.
"""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parents[1] / "backend"
MAX_LINES = 400
# What each folder must never import (the dependency arrows point the other way).
FORBIDDEN = {
    "domain": {
        "storage",
        "studio",
        "worker",
        "server",
        "learning",
        "tracking",
        "research",
        "devtools",
        "cli",
    },
    "learning": {
        "config",
        "storage",
        "studio",
        "worker",
        "server",
        "domain",
        "tracking",
        "research",
        "devtools",
        "cli",
    },
    "storage": {"studio", "worker", "server", "tracking", "research", "devtools", "cli"},
    "studio": {"storage", "worker", "server", "learning", "tracking", "research", "devtools", "cli"},
    "tracking": {"storage", "studio", "worker", "server", "research", "devtools", "cli"},
    "worker": {"server", "research", "devtools", "cli"},
    "server": {"research", "devtools", "cli"},
    "research": {"studio", "worker", "server", "devtools", "cli"},
    "config": {"storage", "studio", "worker", "server", "tracking", "research", "devtools", "cli"},
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


# Read the settings and build every option the ML core gets from them; print what got loaded.
READ_SETTINGS = """
import sys
import backend.config, backend.config.settings
model = backend.config.load_settings().model
for name, member in vars(type(model)).items():
    if callable(member) and not name.startswith("_"):
        getattr(model, name)()
print(*sorted(name for name in sys.modules if name == "torch" or name.startswith("backend.learning.")))
"""


def test_settings_are_read_and_turned_into_options_without_torch():
    """`config` takes only the names and option types of `learning` (learning/options.py): a process
    that reads settings (the server's, the CLI's) never pays for torch."""
    loaded = subprocess.run(
        [sys.executable, "-c", READ_SETTINGS], capture_output=True, text=True, check=True, cwd=PACKAGE.parent
    )
    assert loaded.stdout.split() == ["backend.learning.options"]


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
