"""The project's automation-bias report from Label Studio's annotations and the backend's own files."""

from datetime import UTC, datetime

from backend.domain.coders import CoderNames
from backend.domain.scheme import parse_label_config
from backend.domain.tasks import Task
from backend.resources import label_config
from backend.storage.layout import ProjectDir
from backend.storage.suggestions import SuggestionLog
from backend.storage.validation import Estimates, ValidationSample, ValidationStore
from backend.worker.bias import parent_of, project_report, started_at
from tests.helpers import study_form_result

SCHEME = parse_label_config(label_config("interview_coding"))


def annotation(
    user: int, codes: list[str], parent=None, lead_time=None, created="2026-12-06T10:00:30Z"
) -> dict:
    return {
        "id": user,
        "completed_by": user,
        "result": study_form_result(codes),
        "parent_prediction": parent,
        "lead_time": lead_time,
        "created_at": created,
        "updated_at": created,
    }


def test_the_start_is_the_submit_less_the_lead_time_or_the_draft_when_earlier_and_unknown_without_one():
    assert started_at(annotation(1, [], lead_time=20.5)) == datetime(
        2026, 12, 6, 10, 0, 9, 500000, tzinfo=UTC
    )
    with_draft = annotation(1, [], lead_time=5) | {"draft_created_at": "2026-12-06T09:00:00+00:00"}
    assert started_at(with_draft) == datetime(2026, 12, 6, 9, 0, tzinfo=UTC)
    assert started_at(annotation(1, [])) is None, "no lead time (made through the API): start unknown"
    assert started_at(annotation(1, [], lead_time=3, created="yesterday")) is None
    assert parent_of({"parent_prediction": {"id": 4}}) == 4 and parent_of({}) is None


def test_a_project_report_from_the_log_with_coders_as_pseudonyms_and_the_sample_counted_blind(tmp_path):
    directory = ProjectDir(tmp_path, "1")
    log = SuggestionLog(directory)
    suggested = {"task": 1, "model_version": "v1", "result": study_form_result(["physical_health"])}
    log.add(1, 11, suggested)
    log.add(2, 22, suggested | {"task": 2})
    log.save()
    sample = ValidationSample(task_ids=[3], seed=0, every=5, drawn_from=10, coded_before=2)
    sample.estimates = Estimates(version="v1", computed_at="now", coded=0, held_out=True)
    ValidationStore(directory).replace(sample)
    later = "2099-01-01T00:00:00Z"  # started after the writes above
    tasks = [
        Task(1, {}, (annotation(7, ["physical_health"], 11, 10, later),)),  # kept
        Task(2, {}, (annotation(8, ["mental_health"], 22, 10, later),)),  # changed
        Task(3, {}, (annotation(7, ["mental_health"]),)),  # the validation sample: blind
    ]
    emails = {7: "ann@example.org", 8: "bob@example.org"}
    names = CoderNames(b"key")
    report = project_report(directory, tasks, SCHEME, emails, names)
    assert set(report["coders"]) == {names("ann@example.org"), names("bob@example.org")}
    assert "@" not in str(report), "no email in the report"
    ann, bob = report["coders"][names("ann@example.org")], report["coders"][names("bob@example.org")]
    assert ann["judged"] == 1 and ann["unchanged"]["estimate"] == 1.0
    assert bob["unchanged"]["estimate"] == 0.0 and bob["codes"]["mental_health"]["added"] == 1
    assert bob["codes"]["physical_health"]["removed"] == 1
    assert report["blind"] == 1 and report["judged"] == 2 and report["blind_version"] == "v1"
    assert report["codes"]["physical_health"]["kept"]["estimate"] == 0.5
