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
        "queue",
        "worker",
        "server",
        "learning",
        "tracking",
        "research",
        "devtools",
        "cli",
        "exports",
    },
    "learning": {
        "config",
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
        "exports",
    },
    "storage": {"studio", "queue", "worker", "server", "tracking", "research", "devtools", "cli", "exports"},
    "studio": {
        "storage",
        "queue",
        "worker",
        "server",
        "learning",
        "tracking",
        "research",
        "devtools",
        "cli",
        "exports",
    },
    "tracking": {"storage", "studio", "queue", "worker", "server", "research", "devtools", "cli", "exports"},
    "queue": {"worker", "server", "research", "devtools", "cli", "exports"},
    "worker": {"server", "research", "devtools", "cli"},
    "server": {"research", "devtools", "cli"},
    "research": {"studio", "queue", "worker", "server", "devtools", "cli", "exports"},
    "config": {
        "storage",
        "studio",
        "queue",
        "worker",
        "server",
        "tracking",
        "research",
        "devtools",
        "cli",
        "exports",
    },
    # files written from values (tasks, the scheme, the model's decisions): the command line reads them
    "exports": {
        "config",
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


MAX_FIELDS = 6  # a job and its collaborators take the project's context plus what is theirs
MAX_PARAMETERS = 6
# Wider on purpose, each with its reason; everything else stays within the bounds above.
WIDE = {
    "worker/bodies.py:Body": "a body's identity and its lazily loaded model, one record",
    "learning/compat.py:setfit_arguments": "mirrors setfit's TrainingArguments (the one place for quirks)",
    "storage/versions.py:save": "the metadata a version is saved with, each a keyword",
    "studio/setup.py:set_up": "a project's whole set-up for `init` and the demo, keywords past the fifth",
    # a simulation's command-line arguments, handed through from cli/simulate.py
    "research/corpus.py:load_corpus": "simulate's --data, --test, --codes, coders and split options",
    "research/simulate.py:run_simulation": "simulate's grid, output, tracking, shard and initial set",
    "research/cross_coders.py:transfer_rows": "simulate --cross-coders' grid, seeds and split",
}
PLUMBING = ("cli", "devtools")  # command-line arguments handed through as they were given


def _qualified(path: Path, name: str) -> str:
    where = path.relative_to(PACKAGE) if path.is_relative_to(PACKAGE) else path.name
    return f"{where}:{name}"


def wide_classes(path: Path) -> dict[str, int]:
    """Dataclasses of `path` with more than MAX_FIELDS fields (ClassVars are not fields)."""
    found = {}
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.ClassDef) or not any(
            "dataclass" in ast.unparse(decorator) for decorator in node.decorator_list
        ):
            continue
        fields = [
            item
            for item in node.body
            if isinstance(item, ast.AnnAssign) and not ast.unparse(item.annotation).startswith("ClassVar")
        ]
        if len(fields) > MAX_FIELDS:
            found[_qualified(path, node.name)] = len(fields)
    return found


def wide_functions(path: Path) -> dict[str, int]:
    """Functions and methods of `path` with more than MAX_PARAMETERS parameters (self and cls aside)."""
    found = {}
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        arguments = node.args.posonlyargs + node.args.args + node.args.kwonlyargs
        names = [argument.arg for argument in arguments if argument.arg not in ("self", "cls")]
        if len(names) > MAX_PARAMETERS:
            found[_qualified(path, node.name)] = len(names)
    return found


def test_jobs_and_their_collaborators_take_few_fields():
    roles = ("worker", "queue")
    wide = {
        name: n
        for p in modules()
        if p.relative_to(PACKAGE).parts[0] in roles
        for name, n in wide_classes(p).items()
    }
    assert {name: n for name, n in wide.items() if name not in WIDE} == {}


def test_functions_take_few_parameters_outside_command_line_plumbing():
    wide = {
        name: n
        for p in modules()
        if p.relative_to(PACKAGE).parts[0] not in PLUMBING
        for name, n in wide_functions(p).items()
    }
    assert {name: n for name, n in wide.items() if name not in WIDE} == {}


def test_every_wide_exception_still_exists_and_is_still_wide():
    wide = {}
    for p in modules():
        wide |= wide_classes(p) | wide_functions(p)
    assert sorted(name for name in WIDE if name not in wide) == []


def test_the_width_checks_see_what_they_must_refuse(tmp_path):
    module = tmp_path / "m.py"
    module.write_text(
        "from dataclasses import dataclass\n"
        "@dataclass(frozen=True)\nclass Job:\n    a: int\n    b: int\n    c: int\n    d: int\n    e: int\n"
        "    f: int\n    g: int\n"
        "def f(self, a, b, c, d, e, f, *, g=1): ...\n"
    )
    assert wide_classes(module) == {_qualified(module, "Job"): 7}
    assert wide_functions(module) == {_qualified(module, "f"): 7}
