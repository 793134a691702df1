"""What a simulation compares: named configurations from a YAML grid or the command line.

A configuration is a model kind (``setfit``, ``transformer``, or a baseline: ``tfidf``, or
``tfidf-embeddings`` with the base body's sentence embeddings beside the TF-IDF) plus
settings overrides, validated exactly like the environment settings before anything runs, so a
wrong key or value stops a long run at once with a message naming it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from backend.config import ConfigError, ModelSettings, Settings, with_overrides
from backend.research.errors import GridError

KINDS = ("setfit", "transformer", "tfidf", "tfidf-embeddings")
# The settings a grid may vary: the model group, but for what a run sets itself (its seed) and what
# changes memory, not results.
GRID_KEYS = tuple(
    key for key in ModelSettings.model_fields if key not in ("seed", "activation_checkpointing")
)
TFIDF_KEYS = (
    "query_strategy",
    "class_weight",
    "tune_thresholds",
    "prediction_threshold",
    "threshold_shrinkage",
)
# The baselines: kinds the backend never serves (no MODEL_KIND), each with the settings it reads
BASELINE_KEYS = {"tfidf": TFIDF_KEYS, "tfidf-embeddings": (*TFIDF_KEYS, "model_name", "max_length")}
CHAIN_KEYS = ("chains", "chain_order")  # describe a configuration only with CLASSIFIER_HEAD=chain
# BODY_SELECTION for SetFit: each round's body is judged as the body lane judges it (off unless set)
JUDGE_KEY = "body_selection"
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]*\Z")


@dataclass(frozen=True)
class SimConfig:
    """One named configuration: a model kind and the settings it trains with."""

    name: str
    kind: str
    settings: ModelSettings
    body_selection: str = "off"

    def with_seed(self, seed: int) -> ModelSettings:
        """The configuration's settings with another seed (one run per seed)."""
        return ModelSettings.model_validate({**dict(self.settings), "seed": seed})

    def describe(self) -> dict:
        """The settings that define this configuration (what resume compares and MLflow records)."""
        keys = BASELINE_KEYS.get(self.kind, GRID_KEYS)
        if self.kind in BASELINE_KEYS or self.settings.classifier_head != "chain":
            keys = tuple(key for key in keys if key not in CHAIN_KEYS)  # runs from before keep resuming
        described = {"kind": self.kind, **{key: _plain(getattr(self.settings, key)) for key in keys}}
        if self.body_selection != "off":  # runs from before keep resuming
            described[JUDGE_KEY] = self.body_selection
        return described


def _plain(value: object) -> object:
    return value if value is None or isinstance(value, bool | int | float | str) else str(value)


def make_config(entry: object, base: Settings, where: str) -> SimConfig:
    """A configuration from a grid entry `{name, kind?, <setting>: value, ...}`, validated as settings."""
    if not isinstance(entry, dict):
        raise GridError(f"{where}: expected a mapping with a name and settings, got {entry!r}")
    entry = dict(entry)
    name = entry.pop("name", None)
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise GridError(f"{where}: needs a name of letters, digits, '.', '_', '+' or '-' (got {name!r})")
    where = f"{where} ({name})"
    kind = entry.pop("kind", entry.get("model_kind", base.model.model_kind))
    if entry.get("model_kind", kind) != kind:
        raise GridError(f"{where}: kind={kind!r} contradicts model_kind={entry['model_kind']!r}")
    if kind not in KINDS:
        raise GridError(f"{where}: kind={kind!r}: choose one of {', '.join(KINDS)}")
    allowed = BASELINE_KEYS.get(kind) or ((*GRID_KEYS, JUDGE_KEY) if kind == "setfit" else GRID_KEYS)
    for key in entry:
        if key not in allowed:
            raise GridError(f"{where}: unknown key {key!r} ({_hint(key)}; allowed: {', '.join(allowed)})")
    if kind not in BASELINE_KEYS:
        entry["model_kind"] = kind
    try:
        settings = with_overrides(base, entry)
    except ConfigError as exc:
        raise GridError(f"{where}: {exc}") from None
    judged = settings.loop.body_selection if JUDGE_KEY in entry else "off"
    if judged != "off" and not _judges_bodies(settings.model):
        raise GridError(
            f"{where}: {JUDGE_KEY}={judged!r} judges a fine-tuned body under a refitted head: it needs "
            "classifier_head logistic or chain and setfit_max_steps other than 0"
        )
    return SimConfig(name, kind, settings.model, judged)


def _judges_bodies(settings: ModelSettings) -> bool:
    """Bodies are fine-tuned and heads refitted on them, as in the two-speed loop."""
    return settings.classifier_head in ("logistic", "chain") and settings.setfit_max_steps != 0


def _hint(key: str) -> str:
    if key == JUDGE_KEY:
        return "only SetFit configurations fine-tune a body to judge"
    return "it has no effect on a TF-IDF baseline" if key in GRID_KEYS else "not a setting"


def read_grid(path: Path, base: Settings, only: Sequence[str] | None = None) -> list[SimConfig]:
    """Configurations from a YAML list of entries (only those named in `only`, when given).

    Every entry is checked before anything runs, the unselected ones too.
    """
    import yaml

    if not path.is_file():
        raise GridError(f"{path}: no such file")
    try:
        entries = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise GridError(f"{path}: not valid YAML ({exc})") from None
    if not isinstance(entries, list) or not entries:
        raise GridError(f"{path}: expected a non-empty list of configurations")
    configs = [make_config(entry, base, f"{path}: entry {i}") for i, entry in enumerate(entries, start=1)]
    names = [config.name for config in configs]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise GridError(f"{path}: configuration names must be unique, repeated: {', '.join(repeated)}")
    if only:
        unknown = [name for name in only if name not in names]
        if unknown:
            raise GridError(f"--configs: {', '.join(unknown)} not in {path} ({', '.join(names)})")
        configs = [config for config in configs if config.name in only]
    return configs


def single_config(
    base: Settings, kind: str | None, model: str | None, head: str | None, strategy: str | None
) -> SimConfig:
    """The one configuration given on the command line (unset options come from the environment)."""
    entry: dict = {"kind": kind or base.model.model_kind}
    for key, value in (("model_name", model), ("classifier_head", head), ("query_strategy", strategy)):
        if value is not None:
            entry[key] = value
    name = entry["kind"]
    if entry["kind"] == "setfit":
        name += "-" + entry.get("classifier_head", base.model.classifier_head)
    name += "-" + entry.get("query_strategy", base.model.query_strategy)
    return make_config({"name": name, **entry}, base, "command line")
