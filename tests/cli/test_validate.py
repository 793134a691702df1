"""`coding-backend validate`'s answers to bad input (in this process; the draw itself:
tests/worker/test_validation.py, against a real Label Studio: tests/e2e)."""

import pytest

from backend.cli import main


@pytest.fixture
def model_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("MODEL_DIR", str(tmp_path))
    monkeypatch.setenv("LABEL_STUDIO_URL", "http://127.0.0.1:9")  # never reached by these cases
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", "not-used")
    return tmp_path


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--project", "abc", "--size", "5"], "--project must be a Label Studio project id"),
        (["--project", "7", "--size", "5", "--every", "x"], None),
        (["--project", "7"], "give one of --size N"),
        (["--project", "7", "--size", "5", "--release"], "give one of --size N"),
        (["--project", "7", "--size", "5", "--width", "0.1"], "give one of --size N"),
        (["--project", "7", "--width", "1.5"], "--width 1.5: an interval's width lies between 0 and 1"),
        (["--project", "7", "--width", "0.1"], "project 7 has no model yet"),
        (["--project", "7", "--size", "0"], "at least 1"),
        (["--project", "7", "--size", "5", "--every", "0"], "at least 1"),
        (["--project", "7", "--size", "5"], "project 7 has no model yet"),
        (["--project", "7", "--release"], "no validation sample to release"),
    ],
)
def test_bad_input_exits_2_naming_the_problem(model_dir, capsys, args, message):
    if message is None:  # argparse's own refusal
        with pytest.raises(SystemExit) as exited:
            main(["validate", *args])
        assert exited.value.code == 2 and "invalid int value" in capsys.readouterr().err
        return
    assert main(["validate", *args]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--project", "7", "--codes", "a", "--min-precision", "0"], "a target must lie in (0, 1]"),
        (["--project", "7", "--codes", "a", "--min-recall", "1.2"], "a target must lie in (0, 1]"),
        (["--project", "7"], "--codes a,b"),
        (["--project", "7", "--codes", "a"], "no validation estimates: draw a sample first"),
        (["--project", "7", "--undo"], "not handed over to the model"),
    ],
)
def test_autocode_refuses_bad_input_naming_it(model_dir, capsys, args, message):
    assert main(["autocode", *args]) == 2
    assert message in capsys.readouterr().err
