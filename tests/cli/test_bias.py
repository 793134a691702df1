"""`coding-backend bias`: the automation-bias table of a project, and a clear error for an unknown one
(in this process, Label Studio faked; against a real one: tests/e2e/test_bias_e2e.py)."""

import pytest

from backend.cli import main
from backend.domain.tasks import Task
from backend.storage.layout import ProjectDir
from backend.storage.suggestions import SuggestionLog
from backend.studio.client import StudioError
from tests.fakes import FakeStudio
from tests.helpers import study_form_result


class OneProject(FakeStudio):
    """Label Studio with project 1 only."""

    def label_config(self, project: int) -> str:
        if project != 1:
            raise StudioError(f"no project {project}", 404)
        return super().label_config(project)


@pytest.fixture
def studio(tmp_path, monkeypatch):
    monkeypatch.setenv("MODEL_DIR", str(tmp_path))
    monkeypatch.setenv("LABEL_STUDIO_URL", "http://127.0.0.1:9")  # the fake answers instead
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", "not-used")
    studio = OneProject()
    monkeypatch.setattr("backend.cli.exports.studio_client", lambda settings: studio)
    log = SuggestionLog(ProjectDir(tmp_path, "1"))
    for codes, user in ((["physical_health"], 1), (["mental_health"], 2)):
        task = studio.add_task("Ich schlafe schlecht.")
        log.add(task, 500 + task, {"model_version": "v1", "result": study_form_result(["physical_health"])})
        annotation = {
            "id": task,
            "completed_by": user,
            "result": study_form_result(codes),
            "parent_prediction": 500 + task,
            "lead_time": 4.0,
            "created_at": "2099-01-01T00:00:00Z",  # after the writes
        }
        studio.all[task] = Task(task, studio.all[task].data, (annotation,))
    log.save()
    return studio


def test_the_table_names_coders_by_pseudonym_and_shows_kept_and_changed_suggestions(studio, capsys):
    assert main(["bias", "--project", "1"]) == 0
    shown = capsys.readouterr().out
    assert "2 annotation(s) started from a suggestion the backend recorded; not judged: none" in shown
    assert "@" not in shown and shown.count("coder-") == 2
    assert "1.00 (0.21–1.00, n=1)" in shown and "0.00 (0.00–0.79, n=1)" in shown  # Wilson, 1 of 1 and 0 of 1
    (physical,) = [line for line in shown.splitlines() if line.startswith("physical_health")]
    assert physical.split()[1:4] == ["2", "0", "1"], "suggested twice, added never, removed once"


def test_coder_names_shows_emails_only_when_asked(studio, capsys):
    assert main(["bias", "--project", "1", "--coder-names"]) == 0
    assert "coder.a@example.org" in capsys.readouterr().out


def test_an_unknown_project_exits_2_naming_it(studio, capsys):
    assert main(["bias", "--project", "9"]) == 2
    assert "project 9: Label Studio has no such project" in capsys.readouterr().err
    assert main(["bias", "--project", "x"]) == 2
    assert "--project must be a Label Studio project id" in capsys.readouterr().err
