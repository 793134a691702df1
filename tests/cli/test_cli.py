"""The installed `coding-backend` command, run as a user would."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import FIXTURES

EXECUTABLE = Path(sys.executable).parent / "coding-backend"


def run(*args, env=None, check=False):
    return subprocess.run(
        [str(EXECUTABLE), *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        check=check,
    )


@pytest.fixture(scope="module")
def tiny_env(model_path, tmp_path_factory):
    return {
        "MODEL_NAME": model_path,
        "MODEL_DIR": str(tmp_path_factory.mktemp("cli-models")),
        "SETFIT_NUM_ITERATIONS": "2",
        "SETFIT_MAX_STEPS": "3",
        "MAX_LENGTH": "64",
        "LOG_LEVEL": "WARNING",
    }


def test_help_lists_the_subcommands():
    result = run("--help", check=True)
    for command in ("config", "train", "rank"):
        assert command in result.stdout


def test_config_shows_the_effective_settings():
    result = run("config", env={"QUERY_STRATEGY": "entropy"}, check=True)
    assert "QUERY_STRATEGY=entropy" in result.stdout
    assert "MODEL_NAME=sentence-transformers/paraphrase-multilingual-MiniLM-L12-v2" in result.stdout


def test_a_wrong_env_value_exits_non_zero_naming_it():
    result = run("config", env={"CLASSIFIER_HEAD": "forest"})
    assert result.returncode == 2
    assert "CLASSIFIER_HEAD='forest'" in result.stderr and "logistic" in result.stderr


def test_train_then_rank_a_pool(tiny_env, tmp_path):
    trained = run("train", "--data", str(FIXTURES / "segments.jsonl"), "--project", "demo", env=tiny_env)
    assert trained.returncode == 0, trained.stderr
    assert "saved version v1-" in trained.stdout

    pool = tmp_path / "pool.jsonl"
    pool.write_text(
        "\n".join(
            json.dumps({"id": f"p{i}", "text": t})
            for i, t in enumerate(["My ear hurts.", "I like my teacher.", "I feel sad every evening.", ""])
        )
    )
    out = tmp_path / "ranked.jsonl"
    ranked = run(
        "rank",
        "--data",
        str(pool),
        "--project",
        "demo",
        "--labeled",
        str(FIXTURES / "segments.jsonl"),
        "--out",
        str(out),
        env=tiny_env,
    )
    assert ranked.returncode == 0, ranked.stderr
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["rank"] for r in records] == [1, 2, 3, 4]
    assert sorted(r["id"] for r in records) == ["p0", "p1", "p2", "p3"]
    informativeness = [r["informativeness"] for r in records]
    assert informativeness == sorted(informativeness, reverse=True)
    assert records[0]["prediction_score"] == 0.0
    assert records[-1]["id"] == "p3" and records[-1]["codes"] == []  # the blank segment comes last

    fancy = run("rank", "--data", str(pool), "--project", "demo", "--strategy", "fancy", env=tiny_env)
    assert fancy.returncode == 2 and "unknown query strategy 'fancy'" in fancy.stderr
    assert "Traceback" not in fancy.stderr


def test_malformed_data_is_reported_with_its_line(tiny_env, tmp_path):
    data = tmp_path / "bad.jsonl"
    data.write_text('{"text": "fine", "codes": []}\n{"text": "broken", \n')
    result = run("train", "--data", str(data), "--project", "x", env=tiny_env)
    assert result.returncode == 2
    assert f"{data}:2: not valid JSON" in result.stderr


def test_an_unknown_code_is_reported(tiny_env, tmp_path):
    data = tmp_path / "codes.jsonl"
    data.write_text('{"text": "a", "codes": ["x"]}\n{"text": "b", "codes": ["y"]}\n')
    result = run("train", "--data", str(data), "--project", "x", "--codes", "x", env=tiny_env)
    assert result.returncode == 2 and "unknown code 'y'" in result.stderr


def test_rank_without_a_trained_project_says_so(tiny_env):
    result = run("rank", "--data", str(FIXTURES / "segments.jsonl"), "--project", "nothing", env=tiny_env)
    assert result.returncode == 2 and "project nothing has no model version" in result.stderr


def test_serve_refuses_to_start_open_unless_waived(tmp_path):
    env = {"MODEL_DIR": str(tmp_path), "BASIC_AUTH_USER": "", "BASIC_AUTH_PASS": ""}
    refused = run("serve", "--port", "9", env=env)
    assert refused.returncode == 2 and "refusing to serve without authentication" in refused.stderr
    assert "Traceback" not in refused.stderr
