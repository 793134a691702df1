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


def measured_project(model_dir, project: str = "7", version: str = "v3-20261201000000") -> None:
    """A project whose serving version has estimates on a held-out validation sample."""
    from backend.storage.layout import ProjectDir
    from backend.storage.state import StateStore
    from backend.storage.validation import Estimates, ValidationSample, ValidationStore

    directory = ProjectDir(model_dir, project)
    StateStore(directory).update(lambda state: setattr(state, "current_version", version))
    codes = {"physical_health": {}, "mental_health": {}}
    estimates = Estimates(version=version, computed_at="2026-12-01", coded=4, held_out=True, codes=codes)
    sample = ValidationSample(task_ids=[1, 2, 3, 4], seed=1, every=5, drawn_from=20, coded_before=8)
    ValidationStore(directory).replace(sample.model_copy(update={"estimates": estimates}))


def test_autocode_names_an_unknown_code_and_the_projects_codes(model_dir, capsys):
    measured_project(model_dir)
    assert main(["autocode", "--project", "7", "--codes", "physical_health,mental_helth"]) == 2
    assert (
        "--codes: unknown code(s) mental_helth; the project's codes are physical_health, mental_health"
        in capsys.readouterr().err
    )


def test_a_sample_larger_than_the_uncoded_segments_is_refused_naming_both(
    model_dir, capsys, monkeypatch, segments
):
    from backend.cli import validation
    from backend.config import load_settings
    from tests.fakes import FakeStudio
    from tests.helpers import project_context

    measured_project(model_dir)
    studio = FakeStudio(segments, annotated=12)
    ctx = project_context(studio, load_settings(), model_dir, project="7")
    monkeypatch.setattr(validation, "project_context", lambda settings, project: ctx)
    assert main(["validate", "--project", "7", "--size", "25"]) == 2
    assert "--size 25: project 7 has only 24 uncoded segment(s) to sample from" in capsys.readouterr().err
    assert ctx.validation.read().task_ids == [1, 2, 3, 4], "the sample before stays"


def test_autocode_status_shows_each_code_its_last_redecision_and_a_suspension(model_dir, capsys):
    from backend.storage.autocode import AutoCodeStore
    from backend.storage.layout import ProjectDir
    from tests.server.test_status import handed_over

    assert main(["autocode", "--project", "7", "--status"]) == 0
    assert capsys.readouterr().out == "project 7: no code is handed over to the model\n"
    why = "version v5-20261203000000 has no estimate on the validation sample"
    AutoCodeStore(ProjectDir(model_dir, "7")).update(
        lambda kept: kept.codes.update(physical_health=handed_over(suspended=why))
    )
    assert main(["autocode", "--project", "7", "--status"]) == 0
    shown = capsys.readouterr().out.splitlines()
    assert shown[0].startswith("physical_health: decided by v3-20261201000000 on 3 uncoded segments (2 with")
    assert (
        "handed over at v3-20261201000000 (precision ≥ 0.9, recall ≥ 0.8), 3 coded by coders since"
        in shown[0]
    )
    assert shown[1].startswith(
        "  not re-decided at version v5-20261203000000 (suspended): the decisions of v3"
    )
    assert shown[2] == f"  SUSPENDED: {why}"
