"""The task → prediction id map and the live set: saved atomically, merged across lanes, and never
fatal when damaged."""

from backend.storage.layout import ProjectDir
from backend.storage.prediction_ids import PredictionIds


def test_two_lanes_saves_merge_and_a_drop_is_kept(tmp_path):
    project = ProjectDir(tmp_path, "1")
    fast, background = PredictionIds(project), PredictionIds(project)
    fast.put(1, 11)
    fast.put(2, 12)
    fast.save()
    background.get(1)  # read before the fast lane's next save
    fast.drop(2)
    fast.put(3, 13)
    fast.save()
    background.put(4, 14)
    background.save()
    again = PredictionIds(project)
    assert {t: again.get(t) for t in range(1, 5)} == {1: 11, 2: None, 3: 13, 4: 14}
    assert background.get(3) == 13, "a save also takes in what the other lane saved"


def test_a_damaged_map_reads_as_empty(tmp_path):
    project = ProjectDir(tmp_path, "1")
    project.path.mkdir(parents=True)
    project.prediction_ids.write_text('{"schema_version": 1, "ids": {"1": "not an id"}}')
    ids = PredictionIds(project)
    assert ids.get(1) is None
    ids.put(1, 21)
    ids.save()
    assert PredictionIds(project).get(1) == 21


def test_a_save_takes_in_another_lanes_save_between_two_of_its_own(tmp_path):
    """A lane that wrote the file last merges into what it holds; once another lane wrote since, it
    reads the file again first."""
    project = ProjectDir(tmp_path, "1")
    fast, background = PredictionIds(project), PredictionIds(project)
    fast.put(1, 11)
    fast.save()
    fast.put(2, 12)
    fast.save()  # nobody else wrote: merged into what it holds
    background.put(3, 13)
    background.save()
    fast.put(4, 14)
    fast.save()
    again = PredictionIds(project)
    assert {t: again.get(t) for t in range(1, 5)} == {1: 11, 2: 12, 3: 13, 4: 14}


def test_the_live_set_merges_across_lanes_and_a_drop_leaves_it(tmp_path):
    project = ProjectDir(tmp_path, "1")
    fast, background = PredictionIds(project), PredictionIds(project)
    fast.put(1, 11)
    fast.put(2, 12)
    fast.set_live(1, "v1-20260101000000")
    fast.set_live(2, "v1-20260101000000")
    fast.save()
    background.put(3, 13)
    background.set_live(3, "v0-codebook-20260101000000")
    background.set_live(1, None)  # demoted by the other lane
    background.save()
    fast.drop(2)  # gone from Label Studio: not live either
    fast.save()
    assert PredictionIds(project).live() == {3: "v0-codebook-20260101000000"}
    assert PredictionIds(project).get(1) == 11, "a demoted task keeps its prediction"


def test_a_map_of_schema_1_reads_with_no_task_live(tmp_path):
    project = ProjectDir(tmp_path, "1")
    project.path.mkdir(parents=True)
    project.prediction_ids.write_text('{"schema_version": 1, "ids": {"1": 11}}')
    ids = PredictionIds(project)
    assert ids.get(1) == 11 and ids.live() == {}
