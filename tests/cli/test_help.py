"""What `coding-backend … --help` tells a newcomer, and what `init` says when the environment is empty
(in this process: no subprocess, no Label Studio)."""

import argparse

import pytest

from backend.cli import build_parser, main

SERVE_ENVIRONMENT = (
    "BASIC_AUTH_USER",
    "BASIC_AUTH_PASS",
    "ALLOW_UNAUTHENTICATED",
    "LABEL_STUDIO_URL",
    "LABEL_STUDIO_API_KEY",
    "BACKEND_URL",
    "MODEL_DIR",
    "MODEL_NAME",
)
INIT_ENVIRONMENT = ("LABEL_STUDIO_API_KEY", "BACKEND_URL", "BASIC_AUTH_USER", "BASIC_AUTH_PASS")


def subcommands() -> dict[str, argparse.ArgumentParser]:
    choices = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)).choices
    return dict(choices)


def test_every_option_of_every_subcommand_says_what_it_is_for():
    silent = [
        f"{name} {'/'.join(action.option_strings)}"
        for name, parser in subcommands().items()
        for action in parser._actions
        if action.option_strings and not isinstance(action, argparse._HelpAction)
        if not (action.help or "").strip() or action.help == argparse.SUPPRESS
    ]
    assert silent == []


def test_serve_help_names_the_environment_it_needs():
    shown = subcommands()["serve"].format_help()
    assert [name for name in SERVE_ENVIRONMENT if name not in shown] == []


def test_init_without_any_environment_names_every_missing_variable_at_once(monkeypatch, capsys):
    for name in (*INIT_ENVIRONMENT, "LABEL_STUDIO_URL", "ALLOW_UNAUTHENTICATED"):
        monkeypatch.delenv(name, raising=False)
    assert main(["init", "--wait", "0"]) == 2
    said = capsys.readouterr().err
    assert [name for name in INIT_ENVIRONMENT if name not in said] == [], said
    assert "ALLOW_UNAUTHENTICATED" in said, "the way to go without basic auth"


@pytest.mark.parametrize("command", ["serve", "init", "healthcheck", "rank", "simulate"])
def test_help_never_fails(command, capsys):
    with pytest.raises(SystemExit) as done:
        main([command, "--help"])
    assert done.value.code == 0 and capsys.readouterr().out.startswith("usage:")
