"""`/status`: the lead's page renders the state's figures as SVG plots, with progress and ETA."""

import json
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

import pytest

from backend.config import load_settings
from backend.server.app import create_app
from backend.server.status import eta_seconds
from backend.storage.layout import ProjectDir
from backend.storage.state import LaneStatus, Progress, RoundFigures, RoundRecord, StateStore
from tests.fakes import RecordingQueue

CODES = ["physical_health", "mental_health", "daily_functioning"]
SVG = "{http://www.w3.org/2000/svg}"


def rounds_of_figures(count: int) -> list[RoundFigures]:
    return [
        RoundFigures(
            version=f"v{i}-20261201000000",
            finished_at="2026-12-01T00:00:00+00:00",
            labeled=10 + i,
            label_counts={code: i + j for j, code in enumerate(CODES)},
            f1={"physical_health": 0.5, "mental_health": None, "daily_functioning": 0.7},
            macro_f1=0.6,
            changed_share=None if i == 0 else 1 / (i + 1),
            stop=i > 50,
            mlflow_run=f"3/run{i}",
        )
        for i in range(count)
    ]


def states(root, project="4") -> StateStore:
    return StateStore(ProjectDir(root, project))


@pytest.fixture
def client(tmp_path):
    settings = load_settings(
        model_dir=tmp_path,
        basic_auth_user="lead",
        basic_auth_pass="s3cret",
        mlflow_tracking_uri="http://user:pw@mlflow:5000",
    )
    return create_app(settings, RecordingQueue()).test_client()


AUTH = {"Authorization": "Basic bGVhZDpzM2NyZXQ="}  # lead:s3cret


def test_the_page_of_a_project_with_100_rounds_has_its_three_plots_and_links(client, tmp_path):
    def hundred_rounds(state):
        state.figures = rounds_of_figures(100)
        state.current_version = state.figures[-1].version
        state.monitoring.rare_codes = {"mental_health": 3}
        failed = RoundRecord(kind="train", outcome="failed", started_at="a", finished_at="2026-12-01T10")
        state.add_round(failed)
        state.fast.error = "StudioError: Label Studio answered 502"
        pair = {"kappa": 0.61, "alpha": 0.6, "units": 40}
        with_a = {"tasks": 40, "codes": {"mental_health": pair}, "overall": pair}
        state.monitoring.model_agreement = {"coder": "model", "tasks": 40, "with": {"coder-0a1b": with_a}}
        figures = {"precision": 0.5, "recall": 0.5, "f1": 0.5, "positives": 7, "threshold": 0.425}
        old = {
            "precision": 0.5,
            "recall": 0.5,
            "f1": 0.5,
            "positives": 3,
        }  # a state written before thresholds
        macro = {"precision": 0.5, "recall": 0.5, "f1": 0.5}
        state.monitoring.quality = {
            "codes": {"mental_health": figures, "physical_health": old},
            "macro": macro,
            "threshold_rule": "the best, pulled toward 0.5",
        }

    states(tmp_path).update(hundred_rounds)
    response = client.get("/status/4", headers=AUTH)
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and response.mimetype == "text/html"
    for plot in ("plot-f1", "plot-counts", "plot-stopping"):
        assert f'<figure id="{plot}"><svg' in html, plot
    assert "optimistic" in html
    assert "mental_health" in html and "Label Studio answered 502" in html
    assert '<td class="n">0.42</td>' in html and "pulled toward 0.5" in html, "the chosen thresholds"
    assert "<th>model | coder-0a1b</th>" in html and "0.61 / 0.60 (40)" in html, "the model as a coder"
    assert "http://mlflow:5000/#/experiments/3/runs/run99" in html
    assert "pw@" not in html and "user:" not in html, "no credentials of the tracking URI in links"
    assert "<script" not in html and 'href="http' not in html.split("<body>")[0], "nothing from a CDN"


def test_progress_shows_with_an_eta_while_the_fast_lane_works(client, tmp_path):
    started = (datetime.now(UTC) - timedelta(seconds=100)).isoformat()

    def encoding(state):
        state.fast.status = LaneStatus.TRAINING
        state.progress = Progress(stage="encoding", done=1000, total=5000, started_at=started)

    states(tmp_path).update(encoding)
    html = client.get("/status/4", headers=AUTH).get_data(as_text=True)
    assert "encoding: 1000 / 5000 segments" in html and "about 6.7 min left" in html
    metrics = client.get("/metrics", headers=AUTH).json["projects"]["4"]
    assert metrics["progress"]["done"] == 1000

    states(tmp_path).update(lambda state: setattr(state.fast, "status", LaneStatus.IDLE))
    html = client.get("/status/4", headers=AUTH).get_data(as_text=True)
    assert 'id="progress"' not in html, "a finished (or killed) round's progress is not shown"


def test_eta_is_the_pace_so_far():
    start = datetime(2026, 12, 1, tzinfo=UTC)
    assert eta_seconds(250, 1000, start.isoformat(), start + timedelta(seconds=50)) == pytest.approx(150)
    assert eta_seconds(0, 1000, start.isoformat(), start) is None
    assert eta_seconds(1000, 1000, start.isoformat(), start) is None


def test_the_index_lists_projects_and_pages_need_auth(client, tmp_path):
    states(tmp_path, "4").update(lambda state: None)
    states(tmp_path, "12").update(lambda state: None)
    assert client.get("/status").status_code == 401
    assert client.get("/status/4").status_code == 401
    html = client.get("/status", headers=AUTH).get_data(as_text=True)
    assert 'href="/status/4"' in html and 'href="/status/12"' in html


def test_an_unknown_or_invalid_project_gets_a_clear_4xx(client):
    response = client.get("/status/77", headers=AUTH)
    assert response.status_code == 404 and "no project 77" in response.json["error"]
    assert client.get("/status/x1", headers=AUTH).status_code == 400


def test_a_project_without_rounds_renders_without_plots(client, tmp_path):
    states(tmp_path, "5").update(lambda state: setattr(state, "waiting_for", 10))
    html = client.get("/status/5", headers=AUTH).get_data(as_text=True)
    assert "training starts at 10" in html and "<svg" not in html


def test_the_codebook_queue_and_the_body_choice_show_on_the_page_and_in_metrics(client, tmp_path):
    from backend.storage.state import BodyChoice, CodebookStart, CoderChoice

    def started(state):
        state.codebook_start = CodebookStart(
            version="v0-codebook-20261205000000", tasks=30, checked=0, live_at="x"
        )
        state.body.choice = BodyChoice(
            fine_tuned_f1=0.61,
            base_f1=0.68,
            held_out=9,
            lower=-0.15,
            across_coders=2,
            kept=False,
            judged_at="x",
            by_coder={"coder-0a1b": CoderChoice(fine_tuned_f1=0.7, base_f1=0.65, held_out=6)},
        )

    states(tmp_path).update(started)
    html = " ".join(client.get("/status/4", headers=AUTH).get_data(as_text=True).split())
    assert "the queue follows the codebook (v0-codebook-20261205000000: 30 tasks" in html
    assert "was not kept: held-out macro-F1 0.61 against the base body's 0.68 (9 segments held out;" in html
    assert (
        "scored on another's, mean of 2 coder pairs); gain -0.07, at least -0.15 with 95 % confidence" in html
    )
    assert "kept only above 0); on coder-0a1b's 6: 0.70 against 0.65" in html
    metrics = client.get("/metrics", headers=AUTH).json["projects"]["4"]
    assert metrics["codebook_start"]["tasks"] == 30 and metrics["body_choice"]["kept"] is False
    assert metrics["body_choice"]["by_coder"]["coder-0a1b"]["base_f1"] == 0.65
    assert metrics["body_choice"]["lower"] == -0.15


def figures_at(*rounds) -> list[RoundFigures]:
    """Rounds of (labeled, positives of physical_health, changed share)."""
    return [
        RoundFigures(
            version=f"v{i}-20261201000000",
            finished_at="2026-12-01T00:00:00+00:00",
            labeled=labeled,
            label_counts={"physical_health": positives, "mental_health": 1},
            changed_share=changed,
        )
        for i, (labeled, positives, changed) in enumerate(rounds)
    ]


def chart(html: str, plot: str) -> ET.Element:
    start = html.index(f'<figure id="{plot}">') + len(f'<figure id="{plot}">')
    return ET.fromstring(html[start : html.index("</figure>", start)])


def test_a_label_count_is_one_point_the_last_rounds_and_the_stopping_line_has_no_gaps(client, tmp_path):
    rounds = figures_at((10, 3, None), (12, 4, 0.5), (12, 6, None), (14, 7, 0.2), (16, 8, None), (18, 8, 0.1))
    states(tmp_path).update(lambda state: setattr(state, "figures", rounds))
    html = client.get("/status/4", headers=AUTH).get_data(as_text=True)
    lines = chart(html, "plot-counts").findall(f"{SVG}polyline")
    xs = [[point.split(",")[0] for point in line.get("points").split()] for line in lines]
    assert [len(x) for x in xs] == [5, 5] and all(len(set(x)) == len(x) for x in xs), "no jump at one x"
    stopping = chart(html, "plot-stopping")
    (line,) = stopping.findall(f"{SVG}polyline")
    assert len(line.get("points").split()) == 3, "one line through the rounds that have the signal"
    assert not stopping.findall(f"{SVG}circle"), "no stretch cut off by a gap"


def test_codes_are_named_as_coders_see_them_with_the_id_beside(client, tmp_path):
    def named(state):
        state.figures = figures_at((10, 3, None), (12, 4, 0.5))
        state.monitoring.rare_codes = {"mental_health": 1}
        state.code_names = {"physical_health": "Physical health", "mental_health": "Mental health"}

    states(tmp_path).update(named)
    html = client.get("/status/4", headers=AUTH).get_data(as_text=True)
    legend = [t.text for t in chart(html, "plot-counts").iter(f"{SVG}text")]
    assert "Physical health (physical_health)" in legend and "Mental health (mental_health)" in legend
    assert "<td>Mental health (mental_health)</td>" in html, "the rare codes' table"


def test_a_state_written_before_the_names_still_renders_with_ids(client, tmp_path):
    project = ProjectDir(tmp_path, "4")
    project.path.mkdir(parents=True)
    old = {"schema_version": 1, "figures": [f.model_dump() for f in figures_at((10, 3, None), (12, 4, 0.5))]}
    project.state.write_text(json.dumps(old))
    html = client.get("/status/4", headers=AUTH).get_data(as_text=True)
    legend = [t.text for t in chart(html, "plot-counts").iter(f"{SVG}text")]
    assert "physical_health" in legend and "Physical health" not in html


def test_the_validation_estimates_are_on_the_page_and_in_metrics_with_intervals(client, tmp_path):
    import numpy as np

    from backend.learning.validation import Corpus, Sample, estimate_codes
    from backend.storage.validation import Estimates, ValidationSample, ValidationStore

    truth = np.array([[1], [1], [0], [0], [1], [0]], bool)
    decided = np.array([[1], [0], [0], [1], [1], [0]], bool)
    found = estimate_codes(
        ["physical_health"],
        Sample(truth, decided, decided * 0.8),
        Corpus(4, np.array([2]), np.full((30, 1), 0.4)),
    )
    states(tmp_path).update(lambda state: setattr(state, "current_version", "v3-20261201000000"))
    estimates = Estimates(
        version="v3-20261201000000",
        computed_at="2026-12-02T00:00:00+00:00",
        coded=6,
        held_out=True,
        codes={code: figures.as_dict() for code, figures in found.items()},
        agreement={"tasks": 3, "overall": {"percent_agreement": 0.9, "krippendorff_alpha": 0.71}},
    )
    sample = ValidationSample(
        task_ids=list(range(8)), seed=5, every=4, drawn_from=36, coded_before=4, estimates=estimates
    )
    ValidationStore(ProjectDir(tmp_path, "4")).replace(sample)
    html = client.get("/status/4", headers=AUTH).get_data(as_text=True)
    assert '<table id="validation">' in html and "Held out of training" in html
    assert "the 3 sample\n  segments coded by two or more: 0.90" in html and "alpha\n  0.71" in html
    plot = html.split('<figure id="plot-validation">')[1].split("</figure>")[0]
    svg = ET.fromstring(plot)
    assert len(svg.findall(f"{SVG}circle")) == 3, "precision, recall and prevalence of the one code"
    precision = found["physical_health"].precision  # 2 of 3 predicted positives right
    assert f"{precision.low:.2f}–{precision.high:.2f} (n=3)" in html
    shown = client.get("/metrics", headers=AUTH).get_json()["projects"]["4"]
    validation = shown["validation"]
    assert (
        validation["held_out"] and validation["size"] == 8 and validation["estimates"]["of_serving_version"]
    )
    figures = validation["estimates"]["codes"]["physical_health"]
    assert figures["precision"] == {"estimate": 2 / 3, "low": precision.low, "high": precision.high, "n": 3}
    assert set(figures["prevalence"]) == {"ppi", "classical"} and "optimistic" in shown["quality_is"]
    assert shown["autocoded"] == {}

    ValidationStore(ProjectDir(tmp_path, "4")).update(lambda kept: setattr(kept, "released_at", "2026-12-03"))
    html = client.get("/status/4", headers=AUTH).get_data(as_text=True)
    assert "Released into training" in html, "the cached page follows the release"


def test_a_damaged_autocode_file_is_named_on_metrics_not_a_500(tmp_path, client):
    """A half-written or hand-edited autocoded.json: /metrics still answers, and names the file."""
    states(tmp_path).update(lambda state: setattr(state, "current_version", "v3-20261201000000"))
    ProjectDir(tmp_path, "4").autocoded.write_text('{"codes": {"physical_health": {"version"')
    response = client.get("/metrics", headers=AUTH)
    assert response.status_code == 200
    assert "autocoded.json cannot be read" in response.get_json()["projects"]["4"]["autocoded"]["error"]


def test_the_automation_bias_report_is_on_the_page_and_in_metrics_and_a_new_one_replaces_the_cached_page(
    client, tmp_path
):
    from backend.learning.bias import Shown, Started, automation_bias

    at = datetime(2026, 12, 1, tzinfo=UTC)
    writes = {task: [Shown(at, task, "v1", frozenset({"physical_health"}))] for task in range(21)}
    kept = [
        Started("coder-1", t, frozenset({"physical_health"}), t, at + timedelta(hours=1)) for t in range(20)
    ]
    changed = Started("coder-2", 20, frozenset(), 20, at + timedelta(hours=1))
    blank = Started("coder-2", 21, frozenset(), None, None)
    report = automation_bias([*kept, changed, blank], writes, CODES).as_dict()
    states(tmp_path).update(lambda state: setattr(state.monitoring, "automation_bias", report))
    html = client.get("/status/4", headers=AUTH).get_data(as_text=True)
    coders = html.split('<table id="bias-coders">')[1].split("</table>")[0]
    assert coders.count("<tr>") == 3 and "coder-1" in coders and "accepts nearly everything" in coders
    assert "Not judged: no suggestion 1;" in html and "21 annotations started from a suggestion" in html
    codes = html.split('<table id="bias-codes">')[1].split("</table>")[0]
    assert "0.95\n  <span" in codes and "(n=21)" in codes, "20 of 21 kept physical_health as suggested"
    shown = client.get("/metrics", headers=AUTH).get_json()["projects"]["4"]["automation_bias"]
    assert shown["coders"]["coder-1"]["flagged"] and shown["judged"] == 21
    assert shown["codes"]["physical_health"]["removed"] == 1

    fewer = automation_bias(kept[:5], writes, CODES).as_dict()
    states(tmp_path).update(lambda state: setattr(state.monitoring, "automation_bias", fewer))
    html = client.get("/status/4", headers=AUTH).get_data(as_text=True)
    assert "5 annotations started from a suggestion" in html and "accepts nearly everything" not in html


def handed_over(suspended: str | None = None):
    """physical_health handed over at v3, re-decided at v5 (one segment gained it, two lost it, three
    coded by coders); `suspended`: v5 missed the targets instead."""
    from backend.storage.autocode import AutoCoded, Redecided

    redecided = Redecided(
        version="v5-20261203000000",
        before="v3-20261201000000",
        at="2026-12-03T00:00:00+00:00",
        gained=1,
        lost=2,
        coded=3,
        held=suspended is not None,
    )
    return AutoCoded(
        version="v3-20261201000000" if suspended else redecided.version,
        decided_at=redecided.at,
        min_precision=0.9,
        min_recall=0.8,
        estimate={},
        task_ids=[11, 12, 13],
        decisions=[True, False, True],
        probabilities=[0.9, 0.1, 0.8],
        handed_version="v3-20261201000000",
        redecided=redecided,
        coded_since=3,
        suspended=suspended,
    )


def test_the_page_and_metrics_show_the_last_redecision_and_a_suspension_loudly(tmp_path, client):
    from backend.storage.autocode import AutoCodeStore

    states(tmp_path).update(lambda state: setattr(state, "current_version", "v5-20261203000000"))
    store = AutoCodeStore(ProjectDir(tmp_path, "4"))
    html = client.get("/status/4", headers=AUTH).get_data(as_text=True)
    assert "No code is handed over to the model" in html
    store.update(lambda kept: kept.codes.update(physical_health=handed_over()))
    html = client.get("/status/4", headers=AUTH).get_data(as_text=True)
    line = "re-decided at version v5-20261203000000: 3 changed (+1 / −2), 3 now coded by coders"
    assert '<table id="autocoded">' in html and line in html, "the cached page follows the file"
    assert "handed over at v3-20261201000000; 3 coded by coders since" in html and "Suspended" not in html
    shown = client.get("/metrics", headers=AUTH).get_json()["projects"]["4"]["autocoded"]["physical_health"]
    assert shown["redecided"]["summary"] == line and shown["segments"] == 3 and shown["positives"] == 2
    assert shown["suspended"] is None and shown["handed_version"] == "v3-20261201000000"

    why = "version v5-20261203000000: precision 0.80 (95 % interval 0.70–0.87, n=90) is below 0.90"
    store.update(lambda kept: kept.codes.update(physical_health=handed_over(suspended=why)))
    html = client.get("/status/4", headers=AUTH).get_data(as_text=True)
    assert f'<td colspan="6" class="error"><strong>Suspended:</strong> {why}.</td>' in html
    assert (
        "not re-decided at version v5-20261203000000 (suspended): the decisions of v3-20261201000000 stay"
        in html
    )
    shown = client.get("/metrics", headers=AUTH).get_json()["projects"]["4"]["autocoded"]["physical_health"]
    assert shown["suspended"] == why and shown["version"] == "v3-20261201000000"


def test_metrics_shows_each_new_hand_over_of_codes(tmp_path, client):
    """/metrics keeps a hand-over it parsed (one decision per uncoded segment: megabytes at 100,000
    tasks) only while the file stays the same."""
    from backend.storage.autocode import AutoCoded, AutoCodeStore

    states(tmp_path).update(lambda state: setattr(state, "current_version", "v3-20261201000000"))
    store = AutoCodeStore(ProjectDir(tmp_path, "4"))

    def handed_over(segments: int):
        coded = AutoCoded(
            version="v3-20261201000000",
            decided_at="2026-12-01T10:00:00",
            min_precision=0.9,
            min_recall=0.8,
            estimate={},
            task_ids=list(range(segments)),
            decisions=[True, False] * (segments // 2),
            probabilities=[0.9, 0.1] * (segments // 2),
        )
        return lambda codes: codes.codes.__setitem__("physical_health", coded)

    def shown():
        return client.get("/metrics", headers=AUTH).get_json()["projects"]["4"]["autocoded"]

    store.update(handed_over(4))
    assert shown()["physical_health"]["segments"] == 4 and shown()["physical_health"]["positives"] == 2
    store.update(handed_over(6))
    assert shown()["physical_health"]["segments"] == 6
    store.dir.autocoded.unlink()
    assert shown() == {}
