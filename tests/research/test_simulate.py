"""`coding-backend simulate`: the study's protocol end to end, resume, both input formats, bad input."""

import json
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from backend.cli import main
from backend.domain.scheme import parse_label_config
from backend.research.corpus import load_corpus, read_examples
from tests.helpers import CODES, FIXTURES, REPO, study_form_result, wait_for

EXECUTABLE = Path(sys.executable).parent / "coding-backend"
SEGMENTS = FIXTURES / "segments.jsonl"
INTERVIEW_CONFIG = REPO / "label_config" / "interview_coding.xml"
STUDY_CODES = ",".join(CODES)
SMALL = ("--initial", "8", "--batch", "4", "--rounds", "2")  # a protocol the 25-segment pool can carry


@pytest.fixture(autouse=True)
def one_mlflow_store(tmp_path_factory, monkeypatch):
    """One SQLite store for the whole module: creating a store per run costs seconds."""
    store = tmp_path_factory.getbasetemp() / "simulate-mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{store}")
    return store


def write_grid(path: Path, entries: str) -> Path:
    path.write_text(entries)
    return path


TFIDF_GRID = "- {name: tfidf-cviar, kind: tfidf, query_strategy: cviar}\n"


def simulate(*args: str) -> int:
    return main(["simulate", *args])


def tfidf_run(out: Path, grid: Path, *extra: str) -> int:
    return simulate(*SMALL, "--data", str(SEGMENTS), "--grid", str(grid), "--out", str(out), *extra)


# --- the whole protocol, interrupted and resumed ---------------------------------------------------


def test_tiny_grid_end_to_end_survives_an_interrupt(model_path, tmp_path, one_mlflow_store):
    grid = write_grid(
        tmp_path / "grid.yaml",
        TFIDF_GRID
        + f"- {{name: setfit-tiny, kind: setfit, model_name: '{model_path}', setfit_num_iterations: 1,"
        " setfit_max_steps: 2, max_length: 32, query_strategy: entropy}\n",
    )
    out = tmp_path / "out"
    command = [str(EXECUTABLE), "simulate", *SMALL, "--seeds", "1"]
    command += ["--data", str(SEGMENTS), "--grid", str(grid), "--out", str(out)]
    env = {**os.environ, "LOG_LEVEL": "INFO"}
    first = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    tfidf_file = out / "runs" / "tfidf-cviar-seed1.json"
    wait_for(lambda: tfidf_file.exists() or first.poll() is not None, 60, "the TF-IDF run", interval=0.05)
    first.send_signal(signal.SIGINT)  # Ctrl-C while the SetFit configuration trains
    _, stderr = first.communicate(timeout=60)
    assert first.returncode == 130, stderr
    assert "run the same command to resume" in stderr and "Traceback" not in stderr
    assert not (out / "runs" / "setfit-tiny-seed1.json").exists()
    finished_before = tfidf_file.read_bytes()

    second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stderr
    assert "1 of 2 runs already finished" in second.stderr
    assert "simulate: 100%" in second.stderr  # the progress bar
    assert tfidf_file.read_bytes() == finished_before  # not redone

    results = pd.read_csv(out / "results.csv")
    assert list(results.columns) == [
        "config",
        "seed",
        "round",
        "n_labeled",
        "macro_f1",
        "train_seconds",
        *[f"f1_{c}" for c in sorted(CODES)],
    ]
    assert results.groupby("config")["n_labeled"].apply(list).to_dict() == {
        "setfit-tiny": [8, 12, 16],
        "tfidf-cviar": [8, 12, 16],
    }
    assert results["macro_f1"].between(0, 1).all() and (results["train_seconds"] > 0).all()
    summary = (out / "summary.md").read_text()
    assert "setfit-tiny" in summary and "Best configuration at 16 labeled" in summary
    for figure in ("macro_f1.png", "per_code_f1.png", "train_seconds.png"):
        assert (out / figure).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    check_selections(out)
    check_mlflow_runs(one_mlflow_store)


def check_selections(out: Path) -> None:
    """Round 0 is the random initial set; each later round adds `batch` new pool segments."""
    test_ids = {e.id for e in load_corpus(SEGMENTS, None, **SPLIT).test}
    by_config: dict = {}
    for line in (out / "selections.jsonl").read_text().splitlines():
        row = json.loads(line)
        by_config.setdefault(row["config"], []).append(row["selected"])
    assert set(by_config) == {"tfidf-cviar", "setfit-tiny"}
    for rounds in by_config.values():
        assert [len(ids) for ids in rounds] == [8, 4, 4]
        every = [i for ids in rounds for i in ids]
        assert len(set(every)) == 16 and not set(every) & test_ids
    assert by_config["tfidf-cviar"][0] == by_config["setfit-tiny"][0]  # same seed, same initial set


def check_mlflow_runs(store: Path) -> None:
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{store}")
    runs = mlflow.search_runs(experiment_names=["coding-backend-simulate"], output_format="list")
    parents = {r.info.run_name: r for r in runs if "mlflow.parentRunId" not in r.data.tags}
    parent = parents["setfit-tiny-seed1"]
    assert parent.data.params["query_strategy"] == "entropy" and parent.data.params["initial"] == "8"
    nested = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert sorted(r.info.run_name for r in nested) == [f"setfit-tiny-seed1-round{i}" for i in range(3)]
    last = next(r for r in nested if r.info.run_name.endswith("round2"))
    assert last.data.metrics["n_labeled"] == 16 and "f1_mental_health" in last.data.metrics
    assert len(mlflow.artifacts.load_dict(f"{last.info.artifact_uri}/selected.json")["selected"]) == 4


# --- a grid in shards ------------------------------------------------------------------------------

TWO_TFIDF = TFIDF_GRID + "- {name: tfidf-random, kind: tfidf, query_strategy: random}\n"


def shard_process(out: Path, grid: Path, env: dict, *extra: str) -> subprocess.Popen:
    command = [str(EXECUTABLE), "simulate", *SMALL, "--seeds", "1,2", "--data", str(SEGMENTS)]
    command += ["--grid", str(grid), "--out", str(out), *extra]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(process: subprocess.Popen) -> str:
    stdout, stderr = process.communicate(timeout=300)
    assert process.returncode == 0, stderr
    return stdout


def test_a_grid_run_in_three_shards_reports_the_rows_of_one_run(tmp_path, capsys):
    """Two configurations x two seeds split three ways, as three processes writing one OUT: by
    --shard, and by a SLURM array's environment (1-based and 0-based). The merged tables equal
    an unsharded run's, but for the training seconds."""
    grid = write_grid(tmp_path / "grid.yaml", TWO_TFIDF)
    whole = tmp_path / "whole"
    assert tfidf_run(whole, grid, "--seeds", "1,2") == 0
    out = tmp_path / "sharded"
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI" and not k.startswith("SLURM")}
    slurm_second = {"SLURM_ARRAY_TASK_ID": "2", "SLURM_ARRAY_TASK_MIN": "1", "SLURM_ARRAY_TASK_COUNT": "3"}
    first, second = (
        shard_process(out, grid, env, "--shard", "1/3"),
        shard_process(out, grid, env | slurm_second),
    )
    assert "shard 1/3 finished 2 run(s)" in finish(first)
    assert "shard 2/3 finished 1 run(s)" in finish(second)
    assert not (out / "results.csv").exists()

    assert simulate("--report", str(out)) == 2  # the third shard has not run
    assert "1 of 4 runs not finished yet (tfidf-random seed 1)" in capsys.readouterr().err
    slurm_third = {"SLURM_ARRAY_TASK_ID": "2", "SLURM_ARRAY_TASK_MIN": "0", "SLURM_ARRAY_TASK_COUNT": "3"}
    assert "shard 3/3 finished 1 run(s)" in finish(shard_process(out, grid, env | slurm_third))
    assert simulate("--report", str(out)) == 0

    sharded, unsharded = (pd.read_csv(d / "results.csv").drop(columns="train_seconds") for d in (out, whole))
    pd.testing.assert_frame_equal(sharded, unsharded)
    assert len(sharded) == 12
    assert (out / "selections.jsonl").read_text() == (whole / "selections.jsonl").read_text()
    assert "tfidf-random" in (out / "summary.md").read_text()
    assert sorted(p.name for p in out.glob("mlflow-shard-*.db")) == [
        f"mlflow-shard-{i}-of-3.db" for i in (1, 2, 3)
    ]


def test_a_grid_through_rq_workers_reports_the_rows_of_one_run(tmp_path, redis_url, redis_connection):
    """`--queue 3` puts three shards on the `grid` queue; two `coding-backend worker --queues grid`
    processes run them (each in a working directory of its own) into one OUT, as hosts would."""
    grid = write_grid(tmp_path / "grid.yaml", TWO_TFIDF)
    whole = tmp_path / "whole"
    assert tfidf_run(whole, grid, "--seeds", "1,2") == 0
    out = tmp_path / "queued"
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI" and not k.startswith("SLURM")}
    env["REDIS_URL"] = redis_url
    enqueued = shard_process(out, grid, env, "--queue", "3")
    assert "put 3 shard(s) of the grid on the queue 'grid'" in finish(enqueued)
    assert not out.exists()  # nothing ran here
    workers = []
    for name in ("host-a", "host-b"):
        (tmp_path / name).mkdir()
        command = [str(EXECUTABLE), "worker", "--queues", "grid", "--burst"]
        workers.append(
            subprocess.Popen(
                command,
                env=env,
                cwd=tmp_path / name,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        )
    for worker in workers:
        finish(worker)
    assert simulate("--report", str(out)) == 0
    queued, unsharded = (pd.read_csv(d / "results.csv").drop(columns="train_seconds") for d in (out, whole))
    pd.testing.assert_frame_equal(queued, unsharded)


def test_queue_needs_redis_and_the_whole_grid(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("REDIS_URL", raising=False)
    grid = write_grid(tmp_path / "grid.yaml", TFIDF_GRID)
    common = ("--data", str(SEGMENTS), "--grid", str(grid), "--out", str(tmp_path / "out"))
    assert simulate(*common, "--queue", "3") == 2
    assert "--queue puts the grid's shards in Redis: set REDIS_URL" in capsys.readouterr().err
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")
    assert simulate(*common, "--queue", "3", "--shard", "1/3") == 2
    assert "leave out --shard" in capsys.readouterr().err


# --- resume rules ----------------------------------------------------------------------------------


def test_more_seeds_later_runs_only_the_new_ones(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="backend.research.simulate")
    grid = write_grid(tmp_path / "grid.yaml", TFIDF_GRID)
    out = tmp_path / "out"
    assert tfidf_run(out, grid, "--seeds", "1") == 0
    first = (out / "runs" / "tfidf-cviar-seed1.json").read_bytes()
    assert tfidf_run(out, grid, "--seeds", "1,2") == 0
    assert "1 of 2 runs already finished" in caplog.text
    assert (out / "runs" / "tfidf-cviar-seed1.json").read_bytes() == first
    results = pd.read_csv(out / "results.csv")
    assert sorted(results["seed"].unique()) == [1, 2] and len(results) == 6
    final = results[results["round"] == 2]["macro_f1"]
    expected = f"{final.mean():.3f} ± {final.std():.3f}"
    assert f"**tfidf-cviar**, macro-F1 {expected}" in (out / "summary.md").read_text()


def test_a_resume_with_fewer_configurations_keeps_the_others_in_the_report(tmp_path):
    grid = write_grid(tmp_path / "grid.yaml", TWO_TFIDF)
    out = tmp_path / "out"
    assert tfidf_run(out, grid, "--seeds", "1") == 0
    assert tfidf_run(out, grid, "--seeds", "1", "--configs", "tfidf-random") == 0
    assert simulate("--report", str(out)) == 0
    assert set(pd.read_csv(out / "results.csv")["config"]) == {"tfidf-cviar", "tfidf-random"}


def test_resuming_with_changed_settings_or_protocol_is_refused(tmp_path, capsys):
    out = tmp_path / "out"
    assert tfidf_run(out, write_grid(tmp_path / "grid.yaml", TFIDF_GRID), "--seeds", "1") == 0
    changed = write_grid(
        tmp_path / "changed.yaml", "- {name: tfidf-cviar, kind: tfidf, query_strategy: entropy}\n"
    )
    assert tfidf_run(out, changed, "--seeds", "1") == 2
    assert (
        "configuration 'tfidf-cviar' was run with other settings (query_strategy)" in capsys.readouterr().err
    )
    assert (
        simulate(
            "--data",
            str(SEGMENTS),
            "--grid",
            str(changed),
            "--batch",
            "3",
            "--rounds",
            "2",
            "--initial",
            "8",
            "--out",
            str(out),
        )
        == 2
    )
    assert "holds a simulation with other batch" in capsys.readouterr().err


# --- input formats and coder filters ---------------------------------------------------------------

SPLIT = {
    "scheme": None,
    "codes": None,
    "train_coders": None,
    "test_coders": None,
    "test_fraction": 0.3,
    "split_seed": 0,
}


def label_studio_export(segments: list[dict], path: Path) -> Path:
    """The fixture segments as a Label Studio export: one annotation each, plus a cancelled one."""
    tasks = []
    for number, segment in enumerate(segments, start=1):
        annotation = {
            "result": study_form_result(segment["codes"]),
            "completed_by": {"email": "ann@example.org"},
        }
        cancelled = {"result": [], "was_cancelled": True, "completed_by": 7}
        tasks.append(
            {"id": number, "data": {"text": segment["text"]}, "annotations": [annotation, cancelled]}
        )
    path.write_text(json.dumps(tasks))
    return path


def test_a_label_studio_export_reads_like_the_jsonl(segments, tmp_path):
    export = label_studio_export(segments, tmp_path / "export.json")
    scheme = parse_label_config(INTERVIEW_CONFIG.read_text())
    from_export = read_examples(export, scheme)
    assert len(from_export) == len(segments)  # the cancelled annotations are not examples
    assert {e.coder for e in from_export} == {"ann@example.org"}
    by_text = {e.text: set(e.codes) - {"none", "freq_not_mentioned"} for e in from_export}
    assert by_text == {s["text"]: set(s["codes"]) for s in segments}


def test_simulate_runs_on_a_label_studio_export(segments, tmp_path, capsys):
    export = label_studio_export(segments, tmp_path / "export.json")
    grid = write_grid(tmp_path / "grid.yaml", TFIDF_GRID)
    code = tfidf_run(
        tmp_path / "out",
        grid,
        "--data",
        str(export),
        "--label-config",
        str(INTERVIEW_CONFIG),
        "--codes",
        STUDY_CODES,
        "--seeds",
        "1",
    )
    assert code == 0, capsys.readouterr().err
    assert list(pd.read_csv(tmp_path / "out" / "results.csv").columns[6:]) == [f"f1_{c}" for c in CODES]


def test_coder_filters_train_on_one_coder_and_test_on_another(segments, tmp_path):
    data = tmp_path / "two_coders.jsonl"
    lines = [{**s, "coder": coder} for s in segments for coder in ("anna", "ben")]
    data.write_text("\n".join(json.dumps(line) for line in lines))
    options = {**SPLIT, "train_coders": ["anna"], "test_coders": ["ben"]}
    corpus = load_corpus(data, None, **options)
    assert {e.coder for e in corpus.pool} == {"anna"} and {e.coder for e in corpus.test} == {"ben"}
    assert not {e.id for e in corpus.pool} & {e.id for e in corpus.test}  # no segment on both sides
    assert len(corpus.pool) + len(corpus.test) == len(segments)


def test_the_held_out_split_is_stratified_by_rarest_code():
    corpus = load_corpus(SEGMENTS, None, **SPLIT)
    for code in CODES:
        assert any(code in e.codes for e in corpus.pool) and any(code in e.codes for e in corpus.test), code
    assert load_corpus(SEGMENTS, None, **SPLIT) == corpus


def test_one_configuration_from_the_command_line(tmp_path):
    out = tmp_path / "out"
    code = simulate(
        "--data",
        str(SEGMENTS),
        "--kind",
        "tfidf",
        "--strategy",
        "random",
        "--initial",
        "8",
        "--batch",
        "4",
        "--rounds",
        "1",
        "--seeds",
        "5",
        "--out",
        str(out),
    )
    assert code == 0
    results = pd.read_csv(out / "results.csv")
    assert set(results["config"]) == {"tfidf-random"} and list(results["n_labeled"]) == [8, 12]


def test_a_segment_coded_twice_in_the_pool_is_named_with_its_coder(segments, tmp_path):
    data, test = tmp_path / "twice.jsonl", tmp_path / "test.jsonl"
    rows = [{**segments[0], "coder": "anna"}, {**segments[0], "coder": "ben"}, segments[1]]
    data.write_text("\n".join(json.dumps(row) for row in rows))
    test.write_text(json.dumps(segments[1]))
    corpus = load_corpus(data, test, **SPLIT)
    assert [e.coder for e in corpus.pool] == ["anna", "ben"]  # the test segment left the pool
    first = segments[0]["id"]
    assert corpus.keys(corpus.pool) == [f"{first}@anna", f"{first}@ben"]


# --- bad input: one message naming the problem, exit 2 ---------------------------------------------

GOOD_GRID = "- {name: a, kind: tfidf}\n"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--report", "{tmp}"], "no simulation there (plan.json or run.json missing)"),
        (["--grid", "{tmp}/grid.yaml"], "--data and --out are required (or --report OUT"),
    ],
)
def test_a_report_or_a_run_without_what_it_needs_is_one_clear_message(tmp_path, capsys, options, message):
    assert simulate(*[option.replace("{tmp}", str(tmp_path)) for option in options]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_a_slurm_array_without_its_count_is_refused_by_name(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "1")
    monkeypatch.delenv("SLURM_ARRAY_TASK_COUNT", raising=False)
    (tmp_path / "grid.yaml").write_text(GOOD_GRID)
    assert tfidf_run(tmp_path / "out", tmp_path / "grid.yaml") == 2
    assert "SLURM_ARRAY_TASK_ID, _COUNT, _MIN and _STEP: expected whole numbers" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("files", "options", "message"),
    [
        ({}, ["--data", "{tmp}/missing.jsonl"], "missing.jsonl: no such file"),
        (
            {"bad.jsonl": '{"text": "a", "codes": []}\n{"text": \n'},
            ["--data", "{tmp}/bad.jsonl"],
            "bad.jsonl:2: not valid JSON",
        ),
        ({"nocodes.jsonl": '{"text": "a"}\n'}, ["--data", "{tmp}/nocodes.jsonl"], 'expected a "codes" list'),
        (
            {"export.json": '[{"id": 1, "data": {"text": "a"}, "annotations": []}]'},
            ["--data", "{tmp}/export.json"],
            "is a Label Studio JSON export: pass --label-config",
        ),
        ({"grid.yaml": "- {name: a, kind: setfit, learning_rate: 0.1}\n"}, [], "unknown key 'learning_rate'"),
        ({"grid.yaml": "- {name: a, kind: setfit, query_strategy: fancy}\n"}, [], "query_strategy='fancy'"),
        ({"grid.yaml": "- {name: a, kind: setfit, setfit_max_steps: -5}\n"}, [], "setfit_max_steps=-5"),
        ({"grid.yaml": "- {name: a, kind: tfidf, max_length: 64}\n"}, [], "no effect on a TF-IDF baseline"),
        (
            {"grid.yaml": "- {name: a, kind: tfidf-embeddings, classifier_head: chain}\n"},
            [],
            "no effect on a TF-IDF baseline",
        ),
        ({"grid.yaml": "- {name: a, kind: forest}\n"}, [], "kind='forest'"),
        (
            {"grid.yaml": "- {name: a, kind: tfidf, body_selection: held_out}\n"},
            [],
            "only SetFit configurations",
        ),
        ({"grid.yaml": "- {name: a, kind: setfit, body_selection: maybe}\n"}, [], "body_selection='maybe'"),
        (
            {"grid.yaml": "- {name: a, kind: setfit, body_selection: held_out, setfit_max_steps: 0}\n"},
            [],
            "needs classifier_head logistic or chain and setfit_max_steps other than 0",
        ),
        (
            {
                "grid.yaml": "- {name: a, kind: setfit, body_selection: held_out,"
                " classifier_head: differentiable}\n"
            },
            [],
            "judges a fine-tuned body under a refitted head",
        ),
        ({"grid.yaml": "- {name: a, kind: setfit, model_kind: transformer}\n"}, [], "contradicts model_kind"),
        ({"grid.yaml": "- {name: a/b, kind: tfidf}\n"}, [], "needs a name of letters"),
        ({"grid.yaml": GOOD_GRID + GOOD_GRID}, [], "names must be unique, repeated: a"),
        ({"grid.yaml": "name: a\n"}, [], "expected a non-empty list of configurations"),
        ({}, ["--train-coders", "nobody"], "--train-coders nobody: no segment is coded by them"),
        ({}, ["--initial", "20", "--batch", "25", "--rounds", "5"], "needs 145, the training pool holds 25"),
        ({}, ["--codes", "physical_health,flu"], "--codes: flu not among the codes"),
        ({}, ["--seeds", "one"], "--seeds 'one': expected whole numbers"),
        ({}, ["--strategy", "entropy"], "--grid excludes --kind/--model/--head/--strategy"),
        ({}, ["--label-config", "{tmp}/missing.xml"], "missing.xml: no such file"),
        ({}, ["--configs", "b"], "--configs: b not in"),
        ({"out": "a file"}, ["--batch", "4", "--rounds", "1"], "out: exists and is not a directory"),
        ({}, ["--shard", "two"], "--shard 'two': expected I/N, like 2/3"),
        ({}, ["--shard", "4/3"], "shard 4/3: expected I/N with 1 <= I <= N"),
        ({}, ["--validation", "lots"], "--validation 'lots': expected a number of segments"),
        ({}, ["--validation", "-3"], "--validation '-3': expected a number of segments"),
        ({}, ["--validation", "12", "--batch", "4", "--rounds", "2"], "--batch 4 + --validation 12 needs 40"),
        ({}, ["--min-precision", "1.5"], "--min-precision 1.5: a target must lie in (0, 1]"),
        ({}, ["--min-recall", "0"], "--min-recall 0.0: a target must lie in (0, 1]"),
    ],
)
def test_bad_input_is_one_clear_message(tmp_path, capsys, files, options, message):
    for name, text in {"grid.yaml": GOOD_GRID, **files}.items():
        (tmp_path / name).write_text(text)
    given = [option.replace("{tmp}", str(tmp_path)) for option in options]
    defaults = {"--data": str(SEGMENTS), "--grid": str(tmp_path / "grid.yaml")}
    for flag, value in defaults.items():
        if flag not in given:
            given = [flag, value, *given]
    assert simulate(*given, "--out", str(tmp_path / "out")) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_the_shipped_study_grid_is_valid_and_trains_whole_bodies():
    """bench/grid.yaml replays the study, which fine-tuned every layer of the SetFit body."""
    from backend.config import load_settings
    from backend.research.grid import read_grid

    configs = read_grid(Path(__file__).parents[2] / "bench" / "grid.yaml", load_settings(), None)
    setfit = [config for config in configs if config.kind == "setfit"]
    assert len(configs) == 17 and len(setfit) == 11
    assert all(config.settings.freeze_lower_layers == 0 for config in setfit)
    lexical = {config.name for config in setfit if config.settings.features == "tfidf+embeddings"}
    assert lexical == {"setfit-judged-tfidf-cviar", "setfit-base-tfidf-cviar"}


@pytest.mark.parametrize("kind", ["tfidf", "tfidf-embeddings", "setfit"])
def test_each_configuration_sets_its_own_threshold_shrinkage_and_resumes_only_on_it(kind):
    """THRESHOLD_SHRINKAGE reaches every kind's head, so a grid entry may set it and a run with
    another value is another configuration (issue 38: the choice is for the five-seed run to check)."""
    from backend.config import load_settings
    from backend.research.grid import make_config

    entry = {"name": "x", "kind": kind, "threshold_shrinkage": 0, "features": "tfidf+embeddings"}
    if kind != "setfit":
        del entry["features"]  # a baseline's features are its kind
    config = make_config(entry, load_settings(), "test")
    assert config.settings.head_options().threshold_shrinkage == 0
    assert config.describe()["threshold_shrinkage"] == 0
    assert make_config({"name": "x", "kind": kind}, load_settings(), "test").describe() != config.describe()


def test_the_codebook_chooses_the_initial_set(model_path, tmp_path, monkeypatch, capsys):
    """--initial-set codebook: the same initial segments for every seed, the most like each code's
    hint first; refused without a label config to read the hints from, and resumed runs keep it."""
    monkeypatch.setenv("MODEL_NAME", model_path)
    grid = write_grid(tmp_path / "grid.yaml", TFIDF_GRID)
    codebook = ("--initial-set", "codebook", "--label-config", str(INTERVIEW_CONFIG), "--seeds", "1,2")
    assert tfidf_run(tmp_path / "cb", grid, *codebook) == 0
    selections = [
        json.loads(line) for line in (tmp_path / "cb" / "selections.jsonl").read_text().splitlines()
    ]
    first = [row["selected"] for row in selections if row["round"] == 0]
    assert len(first) == 2 and first[0] == first[1] and len(first[0]) == 8, "one codebook set for both seeds"
    coded = {s["id"]: s["codes"] for s in map(json.loads, SEGMENTS.read_text().splitlines())}
    covered = {code for segment in first[0] for code in coded[segment]}
    assert len(covered) >= 4, f"the first eight reach most codes: {covered}"
    assert "chosen by the codebook" in (tmp_path / "cb" / "summary.md").read_text()
    assert tfidf_run(tmp_path / "cb", grid, "--label-config", str(INTERVIEW_CONFIG), "--seeds", "1,2") == 2
    assert "other initial_set" in capsys.readouterr().err, "a random resume of a codebook run is refused"
    assert tfidf_run(tmp_path / "none", grid, "--initial-set", "codebook") == 2
    assert "reads the codes' definitions (hints) from --label-config" in capsys.readouterr().err


def test_a_logistic_configuration_does_not_depend_on_the_chain_settings():
    """Runs saved before the chain head resume: CHAINS and CHAIN_ORDER describe chain configurations only."""
    from backend.config import load_settings, with_overrides
    from backend.research.grid import single_config

    logistic = single_config(with_overrides(load_settings(), chains=9), "setfit", None, None, None)
    assert "chains" not in logistic.describe() and "chain_order" not in logistic.describe()
    chain = single_config(load_settings(), "setfit", None, "chain", None)
    assert chain.describe()["chains"] == 5


def test_a_model_that_cannot_be_loaded_stops_the_grid_before_it_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    grid = write_grid(tmp_path / "g.yaml", "- {name: gone, kind: setfit, model_name: /nowhere/model}\n")
    assert tfidf_run(tmp_path / "out", grid) == 2
    err = capsys.readouterr().err
    assert "MODEL_NAME='/nowhere/model' (gone) cannot be loaded: there is no folder" in err
    assert "Traceback" not in err


def test_a_judged_configuration_keeps_a_fine_tuned_body_only_if_it_wins(
    model_path, texts, labels, monkeypatch
):
    """body_selection: held_out in a grid: each round's body is judged as the body lane judges it; a
    body that loses leaves the head on the base body; below 32 segments nothing is judged."""
    import numpy as np

    from backend.config import load_settings
    from backend.learning.body_choice import MIN_TO_JUDGE, BodyVerdict
    from backend.learning.setfit_model import base_model
    from backend.research.grid import make_config
    from backend.research.simulate import train

    entry = {"name": "judged", "kind": "setfit", "model_name": model_path, "setfit_num_iterations": 1}
    entry |= {"setfit_max_steps": 2, "max_length": 32, "body_selection": "held_out"}
    config = make_config(entry, load_settings(), "test")
    assert config.describe()["body_selection"] == "held_out"
    assert (
        "body_selection"
        not in make_config({"name": "plain", "kind": "setfit"}, load_settings(), "t").describe()
    )
    assert len(texts) >= MIN_TO_JUDGE
    model, seconds, kept = train(config, 1, texts, labels, CODES)
    assert kept in (True, False) and seconds > 0
    assert model.decide(model.predict_proba(texts[:3])).shape == (3, len(CODES))

    monkeypatch.setattr(
        "backend.research.simulate.judge_bodies", lambda *args: BodyVerdict(0.5, 0.6, 9, -0.1)
    )
    model, _, kept = train(config, 1, texts, labels, CODES)
    base = base_model(CODES, config.settings.encoder_options()).embed(texts[:2])
    assert kept is False and np.allclose(model.embed(texts[:2]), base), "the head sits on the base body"
    assert train(config, 1, texts[:20], labels[:20], CODES)[2] is None, "too few to judge"


def test_a_judged_configuration_with_tfidf_beside_the_embeddings_trains(model_path, texts, labels):
    """setfit-judged-tfidf-cviar's shape: a judged body, and the head on the chosen body's embeddings
    with TF-IDF beside them (its lexicon fitted on the labeled texts)."""
    from backend.config import load_settings
    from backend.research.grid import make_config
    from backend.research.simulate import train

    entry = {"name": "judged-tfidf", "kind": "setfit", "model_name": model_path, "setfit_num_iterations": 1}
    entry |= {"setfit_max_steps": 2, "max_length": 32, "body_selection": "held_out"}
    config = make_config({**entry, "features": "tfidf+embeddings"}, load_settings(), "test")
    assert config.describe()["features"] == "tfidf+embeddings"
    model, _, kept = train(config, 1, texts, labels, CODES)
    assert kept in (True, False) and model.lexicon is not None
    assert model.decide(model.predict_proba(texts[:3])).shape == (3, len(CODES))


def test_judged_rounds_add_a_body_kept_column_and_the_summary_counts_them(tmp_path):
    from backend.research.report import write_report
    from backend.research.results import write_tables

    def rounds(kept):
        return [
            {"round": i, "n_labeled": n, "macro_f1": 0.5, "train_seconds": 1.0, "f1_x": 0.5, "selected": []}
            | ({} if k is None else {"body_kept": k})
            for i, (n, k) in enumerate(zip((20, 40), kept, strict=True))
        ]

    done = {
        ("plain", 1): rounds([None, None]),
        ("judged", 1): rounds([None, True]),
        ("judged", 2): rounds([None, False]),
    }
    write_tables(tmp_path, list(done), done, ["x"])
    results = pd.read_csv(tmp_path / "results.csv")
    assert list(results.columns)[-1] == "body_kept" and results["body_kept"].notna().sum() == 2
    write_report(tmp_path, results.to_dict("records"), ["x"], "protocol")
    assert "judged: 1 of 2 judged rounds" in (tmp_path / "summary.md").read_text()
    write_tables(tmp_path, [("plain", 1)], done, ["x"])
    assert "body_kept" not in pd.read_csv(tmp_path / "results.csv").columns, "no column without judged rounds"


def test_the_lexical_and_semantic_baseline_is_described_by_its_body(model_path, texts, labels):
    """A tfidf-embeddings configuration resumes only on the same body (MODEL_NAME, MAX_LENGTH) and
    trains in a simulation like any other kind."""
    from backend.config import load_settings
    from backend.research.grid import make_config
    from backend.research.simulate import train

    entry = {"name": "both", "kind": "tfidf-embeddings", "model_name": model_path, "max_length": 32}
    config = make_config(entry, load_settings(), "test")
    described = config.describe()
    assert described["kind"] == "tfidf-embeddings" and described["model_name"] == model_path
    assert described["max_length"] == 32 and "classifier_head" not in described
    model, seconds, kept = train(config, 1, texts, labels, CODES)
    assert model.kind == "tfidf-embeddings" and seconds > 0 and kept is None


def test_a_merged_report_draws_no_two_configurations_alike():
    """Past ten configurations matplotlib's colours repeat; the dash and marker then tell them apart."""
    from backend.research.report import line_styles

    styles = line_styles([f"config-{i}" for i in range(25)])
    looks = {(s["color"], s["linestyle"], s["marker"]) for s in styles.values()}
    assert len(looks) == 25
    assert styles["config-0"]["color"] == styles["config-10"]["color"] != styles["config-1"]["color"]


# --- a newcomer's first simulation ------------------------------------------------------------------


def test_the_shipped_example_runs_out_of_the_box_on_the_bundled_model(tmp_path):
    """`coding-backend simulate --example` on a fresh clone, offline: the made-up sample and the study's
    form ship with the package, and MODEL_NAME's default (not in the cache here) falls back to the
    bundled test model, saying so."""
    env = {
        key: value for key, value in os.environ.items() if key not in ("MODEL_NAME", "MLFLOW_TRACKING_URI")
    }
    env |= {"HF_HUB_OFFLINE": "1", "SETFIT_NUM_ITERATIONS": "1", "SETFIT_MAX_STEPS": "4", "MAX_LENGTH": "64"}
    command = [str(EXECUTABLE), "simulate", "--example"]
    done = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "using the small English test model" in done.stderr
    assert "the shipped example" in done.stdout and "training pool 56, test set 24" in done.stdout
    results = pd.read_csv(tmp_path / "simulate-example" / "results.csv")
    assert sorted(results["n_labeled"].unique()) == [10, 20, 30, 40], "10 random, then 3 rounds of 10"
    assert "coder-a" in (tmp_path / "simulate-example" / "summary.md").read_text()


def test_inputs_are_checked_in_the_order_a_user_reads_them(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("MODEL_NAME", str(tmp_path / "no-model-here"))
    assert simulate("--data", str(tmp_path / "coded.jsonl"), "--out", str(tmp_path / "out")) == 2
    error = capsys.readouterr().err
    assert f"--data {tmp_path / 'coded.jsonl'}: no such file" in error and "MODEL_NAME" not in error
    assert simulate("--example", "--data", str(SEGMENTS)) == 2
    assert "--example brings its own segments and form" in capsys.readouterr().err
