"""Every error meant for a user becomes a 4xx naming the problem on an HTTP path, never a 500.

Two checks: each `BackendError` subclass of the package, raised inside a request, is answered with
its own 4xx and its message; and every `raise X(...)` in `backend/server/` raises a 4xx HTTP error
or one of those subclasses, so a route cannot add a 500 for a user's mistake unseen.
"""

import ast
import importlib
import pkgutil
from pathlib import Path

import pytest
from werkzeug.exceptions import HTTPException

import backend
from backend.config import load_settings
from backend.errors import BackendError
from backend.server.app import create_app
from tests.fakes import RecordingQueue

SERVER = Path(backend.__file__).parent / "server"


def every_module() -> list[str]:
    """Every module of the package but the `__main__`s (importing one would run it)."""
    return [m.name for m in pkgutil.walk_packages(backend.__path__, "backend.") if "__main__" not in m.name]


def subclasses(cls: type) -> list[type]:
    """`cls` and every class below it."""
    return [cls] + [found for sub in cls.__subclasses__() for found in subclasses(sub)]


def backend_errors() -> dict[str, type[BackendError]]:
    """Every error class of the package meant for a user, by its full name, once every module of the
    package is imported (so that none is missed for not being imported yet)."""
    for module in every_module():
        importlib.import_module(module)
    return {f"{cls.__module__}.{cls.__qualname__}": cls for cls in subclasses(BackendError)}


ERRORS = backend_errors()


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    """An app of the package with one more route, which raises the error it is named."""
    settings = load_settings(model_dir=tmp_path_factory.mktemp("models"), allow_unauthenticated=True)
    app = create_app(settings, RecordingQueue())

    def fail(name: str):
        raise ERRORS[name](f"the problem {name} names")

    app.add_url_rule("/fail/<name>", view_func=fail)
    return app.test_client()


def test_the_walk_sees_the_errors_of_every_layer():
    layers = {name.split(".")[1] for name in ERRORS if name.count(".") > 1}
    assert {"domain", "learning", "storage", "studio", "server", "config"} <= layers


@pytest.mark.parametrize("name", sorted(ERRORS))
def test_each_backend_error_is_its_4xx_naming_the_problem(client, name):
    response = client.get(f"/fail/{name}")
    assert 400 <= response.status_code < 500
    assert response.status_code == ERRORS[name].http_status
    assert response.json == {"error": f"the problem {name} names"}


def raised_names(path: Path) -> list[str]:
    """The names of what `raise X(...)` raises in a module (`raise` and `raise error` re-raise)."""
    return [
        node.exc.func.id
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Raise)
        and isinstance(node.exc, ast.Call)
        and isinstance(node.exc.func, ast.Name)
    ]


def server_raises() -> list[tuple[str, str]]:
    modules = sorted(SERVER.rglob("*.py"))
    return [(path.stem, name) for path in modules for name in raised_names(path)]


def test_the_scan_finds_what_server_modules_raise():
    assert ("requests", "BadRequest") in server_raises()
    assert ("auth", "AuthConfigError") in server_raises()


@pytest.mark.parametrize(("module", "name"), server_raises())
def test_what_server_code_raises_is_a_4xx(module, name):
    raised = getattr(importlib.import_module(f"backend.server.{module}"), name)
    if issubclass(raised, HTTPException):
        assert 400 <= raised.code < 500
    else:
        assert issubclass(raised, BackendError)
        assert raised in ERRORS.values() and 400 <= raised.http_status < 500
