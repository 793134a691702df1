"""The predictor: each project's serving version, loaded once, the least recently used dropped."""

from backend.config import with_overrides
from backend.domain.scheme import parse_label_config
from backend.resources import label_config
from backend.server.predictor import Predictor
from backend.storage.layout import ProjectDir
from backend.storage.state import StateStore
from backend.storage.versions import ModelStore

SCHEME = parse_label_config(label_config("interview_coding"))


def test_only_the_most_recently_used_models_stay_loaded(trained, texts, tiny_settings, tmp_path):
    store = ModelStore(tmp_path)
    for project in ("1", "2"):
        version = store.save(project, trained, n_labeled=len(texts), training_seconds=1, config={})
        StateStore(ProjectDir(tmp_path, project)).update(
            lambda s, v=version: setattr(s, "current_version", v.name)
        )
    predictor = Predictor(with_overrides(tiny_settings, model_dir=tmp_path).model, store, keep=1)
    tasks = [{"id": 1, "data": {"text": "My knee hurts."}}]
    for project in ("1", "2", "1"):
        answers = predictor.predict(project, SCHEME, tasks)  # the form's codes differ: loaded, not applied
        assert len(answers) == 1 and answers[0]["model_version"].startswith("v1-")
        assert predictor.loaded() == [project]


def test_a_request_is_answered_with_the_loaded_version_while_the_new_one_loads(
    trained, texts, tiny_settings, tmp_path
):
    import threading

    from tests.helpers import wait_for

    store = ModelStore(tmp_path)
    states = StateStore(ProjectDir(tmp_path, "1"))
    first = store.save("1", trained, n_labeled=len(texts), training_seconds=1, config={})
    states.update(lambda s: setattr(s, "current_version", first.name))
    predictor = Predictor(with_overrides(tiny_settings, model_dir=tmp_path).model, store, keep=2)
    assert predictor.serving("1").version.name == first.name
    second = store.save("1", trained, n_labeled=len(texts), training_seconds=1, config={})
    states.update(lambda s: setattr(s, "current_version", second.name))
    loading, real_load = threading.Event(), store.load

    def slow_load(version, device="cpu"):
        loading.wait(60)
        return real_load(version, device)

    store.load = slow_load
    assert predictor.serving("1").version.name == first.name, "answered at once, with the version in memory"
    loading.set()
    wait_for(lambda: predictor.serving("1").version.name == second.name, 60, "the new version to take over")


def test_a_version_pruned_while_it_loads_gives_way_to_the_one_that_replaced_it(
    trained, texts, tiny_settings, tmp_path
):
    """Found by the fault campaign: a project's first /predict read v1 from the state, the worker
    pruned v1 (a newer version serves) before it was loaded, and the request failed with a 500."""
    import shutil

    store = ModelStore(tmp_path)
    states = StateStore(ProjectDir(tmp_path, "1"))
    first = store.save("1", trained, n_labeled=len(texts), training_seconds=1, config={})
    second = store.save("1", trained, n_labeled=len(texts), training_seconds=1, config={})
    states.update(lambda s: setattr(s, "current_version", first.name))
    load = store.load

    def pruned_meanwhile(version, device="cpu"):
        if version.name == first.name:
            states.update(lambda s: setattr(s, "current_version", second.name))
            shutil.rmtree(version.path)
        return load(version, device=device)

    store.load = pruned_meanwhile
    predictor = Predictor(with_overrides(tiny_settings, model_dir=tmp_path).model, store)
    answers = predictor.predict("1", SCHEME, [{"id": 1, "data": {"text": "My knee hurts."}}])
    assert answers[0]["model_version"] == second.name


def test_predict_marks_evidence_with_an_evidence_form_for_the_first_evidence_tasks(
    trained, texts, tiny_settings, tmp_path
):
    store = ModelStore(tmp_path)
    version = store.save("1", trained, n_labeled=len(texts), training_seconds=1, config={})
    StateStore(ProjectDir(tmp_path, "1")).update(lambda s: setattr(s, "current_version", version.name))
    settings = with_overrides(tiny_settings, model_dir=tmp_path, evidence_tasks=1).model
    predictor = Predictor(settings, store)
    text = "My knee hurts when I run, and I worry about school every day, my tummy aches too."
    tasks = [{"id": i, "data": {"text": text}} for i in (1, 2)]
    first, second = predictor.predict(
        "1", parse_label_config(label_config("interview_coding_evidence")), tasks
    )
    regions = [r for r in first["result"] if r["type"] == "labels"]
    chosen = {c for r in first["result"] if r["type"] == "choices" for c in r["value"]["choices"]}
    assert regions and all(r["value"]["labels"][0] in chosen for r in regions)
    assert all(text[r["value"]["start"] : r["value"]["end"]] == r["value"]["text"] for r in regions)
    assert not any(r["type"] == "labels" for r in second["result"]), "EVIDENCE_TASKS=1"
    plain = predictor.predict("1", SCHEME, tasks[:1])[0]
    assert {r["type"] for r in plain["result"]} == {"choices"}


def test_predict_answers_a_task_of_the_validation_sample_without_a_suggestion(
    trained, texts, tiny_settings, tmp_path
):
    from backend.storage.validation import ValidationSample, ValidationStore

    store = ModelStore(tmp_path)
    version = store.save("1", trained, n_labeled=len(texts), training_seconds=1, config={})
    StateStore(ProjectDir(tmp_path, "1")).update(lambda s: setattr(s, "current_version", version.name))
    sample = ValidationSample(task_ids=[1], seed=0, every=5, drawn_from=10, coded_before=2)
    ValidationStore(ProjectDir(tmp_path, "1")).replace(sample)
    predictor = Predictor(with_overrides(tiny_settings, model_dir=tmp_path, evidence_tasks=2).model, store)
    text = "My knee hurts when I run, and I worry about school every day, my tummy aches too."
    tasks = [{"id": i, "data": {"text": text}} for i in (1, 2)]
    held, other = predictor.predict("1", parse_label_config(label_config("interview_coding_evidence")), tasks)
    assert held["result"] and all(item["value"] == {"choices": []} for item in held["result"])
    assert held["model_version"] == version.name
    assert any(item["type"] == "labels" for item in other["result"])
