from pathlib import Path
from types import SimpleNamespace

import pytest

from backend.config import DEFAULT_MODEL, ConfigError, load_settings, with_overrides
from backend.learning.devices import resolved_device, resolved_precision


def test_defaults_are_the_production_setup(monkeypatch):
    for name in ("MODEL_NAME", "QUERY_STRATEGY", "CLASSIFIER_HEAD", "MODEL_DIR"):
        monkeypatch.delenv(name, raising=False)
    settings = load_settings()
    assert settings.model.model_name == DEFAULT_MODEL
    assert settings.model.model_kind == "setfit"
    assert settings.model.classifier_head == "logistic"
    assert settings.model.query_strategy == "cviar"
    assert settings.model.end_to_end is False
    assert settings.server.model_dir == Path("data/models")


def test_values_come_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("QUERY_STRATEGY", "entropy")
    monkeypatch.setenv("SETFIT_MAX_STEPS", "12")
    monkeypatch.setenv("MODEL_NAME", str(tmp_path))
    monkeypatch.setenv("DEVICE", "cpu")
    settings = load_settings()
    assert (settings.model.query_strategy, settings.model.setfit_max_steps) == ("entropy", 12)
    assert settings.model.model_name == str(tmp_path)
    assert resolved_device(settings.model.device) == "cpu"


def test_a_wrong_value_names_the_variable_and_the_choices(monkeypatch):
    monkeypatch.setenv("QUERY_STRATEGY", "uncertainty")
    with pytest.raises(ConfigError) as error:
        load_settings()
    message = str(error.value)
    assert "QUERY_STRATEGY='uncertainty'" in message
    for allowed in ("cviar", "entropy", "random", "lci", "adaptive"):
        assert allowed in message


def test_every_bad_variable_is_reported_at_once(monkeypatch):
    monkeypatch.setenv("SEED", "-3")
    monkeypatch.setenv("DEVICE", "tpu")
    with pytest.raises(ConfigError) as error:
        load_settings()
    assert "SEED" in str(error.value) and "DEVICE" in str(error.value)


def test_end_to_end_needs_the_differentiable_head(monkeypatch):
    monkeypatch.setenv("END_TO_END", "true")
    with pytest.raises(ConfigError, match="END_TO_END=true needs CLASSIFIER_HEAD=differentiable"):
        load_settings()
    monkeypatch.setenv("CLASSIFIER_HEAD", "differentiable")
    assert load_settings().model.end_to_end is True


def test_empty_values_fall_back_to_defaults_and_none_unsets(monkeypatch):
    monkeypatch.setenv("SEED", "")
    monkeypatch.setenv("SETFIT_NUM_ITERATIONS", "none")
    settings = load_settings()
    assert settings.model.seed == 42
    assert settings.model.setfit_num_iterations is None


def test_a_path_object_is_accepted_as_model_name(tmp_path):
    assert load_settings(model_name=tmp_path).model.model_name == str(tmp_path)


def test_secrets_never_appear_in_public_settings_or_their_repr(monkeypatch):
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", "tok-very-secret")
    monkeypatch.setenv("BASIC_AUTH_USER", "coder")
    monkeypatch.setenv("BASIC_AUTH_PASS", "pw-very-secret")
    monkeypatch.setenv("REDIS_URL", "redis://:pw-very-secret@redis:6379/0")
    settings = load_settings()
    assert settings.server.label_studio_api_key.get_secret_value() == "tok-very-secret"
    shown = repr(settings) + str(settings.public())
    assert "very-secret" not in shown and "redis_url" not in settings.public()
    assert settings.public()["basic_auth_user"] == "coder"


def test_basic_auth_needs_user_and_password(monkeypatch):
    monkeypatch.setenv("BASIC_AUTH_USER", "coder")
    with pytest.raises(ConfigError, match="BASIC_AUTH_USER and BASIC_AUTH_PASS"):
        load_settings()


def test_the_inbox_caps_are_bounded_and_in_order(monkeypatch):
    monkeypatch.setenv("INBOX_MAX_BYTES_PER_PROJECT", "2000000")
    assert load_settings().server.inbox_max_bytes == 50_000_000
    monkeypatch.setenv("INBOX_MAX_BYTES", "1000000")
    with pytest.raises(ConfigError, match=r"INBOX_MAX_BYTES .* is below INBOX_MAX_BYTES_PER_PROJECT"):
        load_settings()
    with pytest.raises(ConfigError, match="INBOX_MAX_BYTES_PER_PROJECT"):
        load_settings(inbox_max_bytes_per_project=10)


def test_coder_settings(monkeypatch):
    monkeypatch.setenv("TRAIN_CODERS", " Ann@Example.org, bob@example.org ,")
    monkeypatch.setenv("MULTI_CODER_RULE", "union")
    settings = load_settings()
    assert settings.loop.train_coders == ["ann@example.org", "bob@example.org"]
    assert (
        settings.loop.multi_coder_rule == "union"
        and settings.public()["train_coders"] == settings.loop.train_coders
    )
    monkeypatch.setenv("TRAIN_CODERS", "")
    assert load_settings(multi_coder_rule="majority").loop.train_coders == []
    monkeypatch.setenv("MULTI_CODER_RULE", "vote")
    with pytest.raises(
        ConfigError, match=r"MULTI_CODER_RULE='vote'.*'majority', 'latest', 'union' or 'per_coder'"
    ):
        load_settings()


@pytest.mark.parametrize(
    ("value", "choices"),
    [
        (None, ["none", "no", "none of these"]),
        ("", ["none", "no", "none of these"]),
        ("None, Nein ,keine", ["none", "nein", "keine"]),
        ("none", ["none"]),  # the environment's "none" means no value elsewhere; here the word
        ("off", []),
    ],
)
def test_none_choices(monkeypatch, value, choices):
    if value is not None:
        monkeypatch.setenv("NONE_CHOICES", value)
    assert load_settings().loop.none_choices == choices


def test_overrides_are_validated_and_named_as_given(monkeypatch):
    monkeypatch.setenv("QUERY_STRATEGY", "entropy")
    base = load_settings()
    assert with_overrides(base, {"classifier_head": "differentiable"}).model.query_strategy == "entropy"
    with pytest.raises(ConfigError, match="query_strategy='fancy'"):
        with_overrides(base, {"query_strategy": "fancy"})
    with pytest.raises(ConfigError, match="END_TO_END=true needs CLASSIFIER_HEAD=differentiable"):
        with_overrides(base, {"end_to_end": True})


def test_a_password_in_the_label_studio_url_is_never_shown(monkeypatch):
    from label_studio_sdk.core.pagination import SyncPager

    from backend.studio.client import TASK_PAGE, StudioClient, StudioError

    monkeypatch.setenv("LABEL_STUDIO_URL", "http://coder:url-very-secret@127.0.0.1:9")
    settings = load_settings()
    assert settings.public()["label_studio_url"] == "http://***@127.0.0.1:9"
    client = StudioClient(settings.server.label_studio_url, "token", timeout=2)
    with pytest.raises(StudioError, match=r"Label Studio at http://\*\*\*@127.0.0.1:9 could not") as error:
        client.label_config(1)
    assert "very-secret" not in str(error.value)

    def pages(**_query):  # a full first page; the second fails, with the URL in the library's message
        def second():
            raise RuntimeError(f"Server error for url '{settings.server.label_studio_url}/api/tasks?page=2'")

        full = [{"id": i, "data": {}} for i in range(1, TASK_PAGE + 1)]
        return SyncPager(
            get_next=second, has_next=True, items=full, response=SimpleNamespace(total=TASK_PAGE + 1)
        )

    client._sdk.tasks.list = pages
    with pytest.raises(StudioError, match="failed while listing tasks") as error:
        list(client.tasks(1, annotated=True))
    assert "very-secret" not in str(error.value)


def test_each_group_holds_its_settings_and_an_unknown_override_is_named():
    settings = load_settings(fast_loop=False, port=9191, seed=3)
    assert (settings.loop.fast_loop, settings.server.port, settings.model.seed) == (False, 9191, 3)
    assert not settings.two_speed
    with pytest.raises(ConfigError, match="unknown setting"):
        load_settings(learning_rate=0.1)
    with pytest.raises(ConfigError, match="seed=-1"):
        with_overrides(settings, seed=-1)


def test_overrides_are_validated_across_groups_and_keep_secrets(monkeypatch):
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", "tok-very-secret")
    base = load_settings()
    changed = with_overrides(base, {"query_strategy": "random", "write_first": 7})
    assert (changed.model.query_strategy, changed.loop.write_first) == ("random", 7)
    assert changed.server.api_key() == "tok-very-secret"
    assert changed.server is base.server, "an untouched group is kept as it is"


@pytest.mark.parametrize(("native", "device", "expected"), [(True, "cpu", "bf16"), (False, "cpu", "fp32")])
def test_auto_encode_precision_takes_bf16_only_where_the_cpu_computes_it(
    monkeypatch, native, device, expected
):
    from backend.learning import compat

    monkeypatch.setattr(compat, "native_bf16_cpu", lambda: native)
    monkeypatch.setenv("DEVICE", device)
    model = load_settings().model
    assert resolved_precision(model.encode_precision, model.device) == expected
    monkeypatch.setenv("ENCODE_PRECISION", "fp32")
    model = load_settings().model
    assert resolved_precision(model.encode_precision, model.device) == "fp32"


def test_a_wrong_encode_precision_is_named(monkeypatch):
    monkeypatch.setenv("ENCODE_PRECISION", "int8")
    with pytest.raises(ConfigError, match=r"ENCODE_PRECISION='int8'.*'auto', 'fp32' or 'bf16'"):
        load_settings()
