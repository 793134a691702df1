"""`coding-backend export` and `codebook` on the fixture project (an in-memory Label Studio) with a
serving version on disk: what they write, and the clear errors for bad input."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from backend.cli import build_parser, main
from backend.cli.exports import export_options, export_source, write_codebook
from backend.config import load_settings
from backend.exports.codebook import read_codebook
from backend.storage.autocode import AutoCoded, AutoCodeStore
from backend.storage.layout import ProjectDir
from backend.storage.ranked_pool import RankedPool, write_ranked_pool
from backend.storage.state import StateStore
from backend.storage.validation import Estimates, ValidationSample, ValidationStore
from backend.studio.client import StudioError
from backend.worker.exporting import UnknownProjectError, export_project
from tests.exports.conftest import CODES, VERSION
from tests.fakes import FakeStudio

KEY = "secret-api-key-4711"


@pytest.fixture
def settings(tmp_path):
    return load_settings(model_dir=tmp_path / "models", label_studio_api_key=KEY, multi_coder_rule="majority")


def serve(settings, model) -> None:
    """The version `model` describes, on disk as a round leaves it: version.json, pool.npz, state.json."""
    directory = ProjectDir(settings.server.model_dir, "1")
    path = directory.version(VERSION)
    path.mkdir(parents=True)
    record = {"version": VERSION, "kind": "head", "codes": list(CODES), "n_labeled": 3, "config": {"seed": 7}}
    (path / "version.json").write_text(json.dumps(record))
    ids = sorted(model.proba)
    proba, decisions = (np.array([m[i] for i in ids]) for m in (model.proba, model.decided))
    write_ranked_pool(path, RankedPool(np.array(ids), proba, decisions, np.zeros((3, len(CODES)))))
    quality = {"method": "5-fold cross-validation", "labeled": 3, "codes": {"physical_health": {"f1": 0.5}}}

    def change(state):
        state.current_version = VERSION
        state.monitoring.quality = quality

    StateStore(directory).update(change)


def interval(estimate, low, high, n) -> dict:
    return {"estimate": estimate, "low": low, "high": high, "n": n}


ESTIMATE = {
    "precision": interval(0.95, 0.83, 0.99, 40),
    "recall": interval(0.9, 0.77, 0.96, 42),
    "f1": interval(0.92, 0.85, 0.97, 40),
    "prevalence": {"ppi": interval(0.3, 0.25, 0.35, 50), "classical": interval(0.32, 0.2, 0.44, 50)},
}


def hand_over(settings) -> None:
    """health_unspecific handed over on tasks 3 and 4, and task 2 in a held-out validation sample,
    as `autocode` and `validate` leave them."""
    directory = ProjectDir(settings.server.model_dir, "1")
    kept = AutoCoded(
        version=VERSION,
        decided_at="2026-01-02T10:00:00+00:00",
        min_precision=0.8,
        min_recall=0.7,
        estimate=ESTIMATE,
        task_ids=[3, 4],
        decisions=[True, False],
        probabilities=[0.8, 0.4],
    )
    AutoCodeStore(directory).update(lambda codes: codes.codes.update(health_unspecific=kept))
    estimates = Estimates(
        version=VERSION, computed_at="2026-01-02T09:00:00+00:00", coded=50, held_out=True,
        codes={"health_unspecific": ESTIMATE},
    )  # fmt: skip
    sample = ValidationSample(
        task_ids=[2], seed=1, every=5, drawn_from=3, coded_before=2, estimates=estimates
    )
    ValidationStore(directory).replace(sample)


def run_export(studio, settings, out, *options):
    args = build_parser().parse_args(["export", "--project", "1", "--out", str(out), *options])
    return export_project(
        export_source(studio, settings, 1), out, out.suffix[1:], export_options(args)
    ).segments


def test_export_writes_the_table_its_codebook_and_about_file(tmp_path, studio, settings, model):
    serve(settings, model)
    hand_over(settings)
    out = tmp_path / "corpus.csv"
    assert run_export(studio, settings, out) == 5
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert [(row["task_id"], row["source"]) for row in rows] == [
        ("0", "coders"),
        ("1", "coders"),
        ("4", "coders"),
        ("2", "uncoded"),
        ("3", "model"),
    ]
    assert rows[4]["model_version"] == VERSION and rows[4]["code_health_unspecific"] == "1"
    assert rows[4]["autocoded"] == f"health_unspecific@{VERSION}" and rows[4]["code_physical_health"] == ""
    assert [row["validation"] for row in rows] == ["", "", "", "held out", ""]
    codebook = list(csv.DictReader((tmp_path / "corpus.codebook.csv").open(encoding="utf-8")))
    assert [(c["column"], c["name"], c["question"]) for c in codebook][-1] == (
        "code_freq_mentioned",
        "Yes",
        "frequency",
    )
    about = (tmp_path / "corpus.about.md").read_text(encoding="utf-8")
    assert "- coders: 3 segments; 2 coded by two or more coders, 1 of them with different codes." in about
    assert "- model: 1 segments" in about and "- uncoded: 1 segments" in about
    assert f"Version {VERSION} (head)" in about and '"seed": 7' in about
    assert "not on the whole corpus" in about  # the estimate rests on actively chosen segments
    handed = f"| health_unspecific | {VERSION} | 2026-01-02T10:00:00+00:00 | 2 | 1 | 0.95 (0.83–0.99, n=40) "
    assert handed + "| 0.90 (0.77–0.96, n=42) | precision ≥ 0.8, recall ≥ 0.7 |" in about
    assert "on the 50 coded segments of the sample (held out of training)" in about
    assert "| 0.30 (0.25–0.35, n=50) | 0.32 (0.20–0.44, n=50) |" in about


def test_without_a_hand_over_the_model_codes_nothing(tmp_path, studio, settings, model):
    """The serving version's decisions are suggestions: without `autocode` no segment's final codes
    come from the model, and the suggestion stays in its own column."""
    serve(settings, model)
    out = tmp_path / "corpus.csv"
    run_export(studio, settings, out)
    rows = {row["task_id"]: row for row in csv.DictReader(out.open(encoding="utf-8"))}
    assert rows["3"]["source"] == "uncoded" and rows["3"]["code_health_unspecific"] == ""
    assert rows["3"]["suggested_codes"] == "health_unspecific" and rows["3"]["autocoded"] == ""
    about = (tmp_path / "corpus.about.md").read_text(encoding="utf-8")
    assert "- model: 0 segments" in about and "None: every final code was given by a coder." in about
    assert "No validation sample has been coded yet" in about
    for written in tmp_path.glob("corpus*"):
        text = written.read_text(encoding="utf-8")
        assert KEY not in text and "example.org" not in text


def test_coder_names_are_emails_only_when_asked(tmp_path, studio, settings):
    out = tmp_path / "corpus.jsonl"
    run_export(studio, settings, out, "--coder-names")
    first = json.loads(out.read_text(encoding="utf-8").splitlines()[0])
    assert first["coders"] == "coder.a@example.org;coder.b@example.org"
    assert "No model version serves this project yet." in (tmp_path / "corpus.about.md").read_text()


def test_the_qdpx_export_groups_interviews(tmp_path, studio, settings):
    out = tmp_path / "corpus.qdpx"
    assert (
        run_export(studio, settings, out, "--source-field", "interview_id", "--order-field", "speech_index")
        == 5
    )


def test_the_codebook_command_writes_the_projects_codes(tmp_path, studio, settings):
    assert write_codebook(studio, settings, 1, tmp_path / "codes.qdc") == 5
    codes, _ = read_codebook(tmp_path / "codes.qdc")
    assert [code.name for code in codes][:2] == ["Physical health", "Mental health"]


class NoSuchProject(FakeStudio):
    def label_config(self, project: int) -> str:
        raise StudioError("Label Studio at http://ls could not read the project (HTTP 404: Not found.)", 404)


def test_an_unknown_project_is_named(tmp_path, settings):
    with pytest.raises(UnknownProjectError, match="project 1: Label Studio has no such project"):
        run_export(NoSuchProject(), settings, tmp_path / "x.csv")
    assert list(tmp_path.glob("x*")) == []


@pytest.mark.parametrize(
    ("arguments", "said"),
    [
        (["--out", "{tmp}/x.xlsx"], "cannot tell the format from the suffix '.xlsx'"),
        (["--out", "{tmp}/x.csv", "--format", "sav"], "--format 'sav': unknown"),
        (["--out", "{tmp}/no/such/folder/x.csv"], "cannot write {tmp}/no/such/folder/x.csv: No such file"),
        (["--out", "{tmp}/x.csv", "--project", "seven"], "--project must be a Label Studio project id"),
        (["--out", "{tmp}/x.csv", "--source-field", "interview_id"], "group a .qdpx project's sources"),
    ],
)
def test_bad_options_exit_2_with_one_message_before_label_studio_is_asked(tmp_path, capsys, arguments, said):
    given = [argument.replace("{tmp}", str(tmp_path)) for argument in arguments]
    project = [] if "--project" in given else ["--project", "1"]
    assert main(["export", *project, *given]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and said.replace("{tmp}", str(tmp_path)) in err


def test_init_takes_a_codebook_or_a_label_config_not_both(tmp_path, capsys):
    assert main(["init", "--codebook", "codes.qdc", "--label-config", "form.xml"]) == 2
    assert "give either --codebook or --label-config" in capsys.readouterr().err
