"""Workarounds for small-text 2.0.0.dev4 and setfit 1.2 — every one of them, and only here.

Each function names the library behaviour it corrects; `tests/test_compat.py` holds, per
workaround, a test that fails without it. When a library release fixes one, delete the
function and its test together.
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
from collections.abc import Iterator, Sequence

import numpy as np
from scipy.sparse import csr_matrix


def multilabel_dataset(texts: Sequence[str], label_matrix: np.ndarray, dataset_class=None, **kwargs):
    """A small-text multi-label dataset that knows all codes, even those with no positive yet.

    Bug: without ``target_labels``, small-text infers the codes as 0 … (highest code with a
    positive), so while the last code(s) have no positive yet the dataset has fewer codes than
    the classifier and ``fit`` fails.
    """
    if dataset_class is None:
        from small_text import TextDataset

        dataset_class = TextDataset
    num_codes = label_matrix.shape[1]
    return dataset_class.from_arrays(
        list(texts),
        csr_matrix(np.asarray(label_matrix, dtype=np.int64)),
        target_labels=np.arange(num_codes),
        **kwargs,
    )


def setfit_arguments(
    model_name: str,
    *,
    seed: int,
    num_iterations: int | None,
    max_steps: int,
    batch_size: int,
    max_length: int,
    end_to_end: bool,
    head_params: dict,
    show_progress_bar: bool,
    output_dir: str,
):
    """SetFitModelArguments with the pitfalls of the small-text/setfit pairing closed.

    - setfit's ``report_to`` defaults to "all": with mlflow installed every fit writes
      ``./mlflow.db`` into the working directory. We pass ``report_to="none"`` and a private
      ``output_dir`` (small-text's default is ``./checkpoints``).
    - small-text's ``seed=None`` draws a fresh seed per fit: we always pass one.
    - ``max_steps`` is an exact step count in the Hugging Face trainers, not a cap: with fewer
      pairs the data is cycled again. Callers pass the planned number of steps (see
      ``setfit_model.contrastive_steps``), which equals one pass over the pairs unless the cap binds.
    - With ``use_differentiable_head``, small-text puts ``multitarget=True`` into ``head_params``,
      but setfit overwrites it from ``multi_target_strategy`` (None → a softmax head that forces
      codes to compete). We pass ``multi_target_strategy="one-vs-rest"``: one sigmoid per code.
    """
    from small_text.integrations.transformers.classifiers.setfit import SetFitModelArguments

    model_kwargs: dict = {"multi_target_strategy": "one-vs-rest"}
    if head_params:
        model_kwargs["head_params"] = dict(head_params)
    return SetFitModelArguments(
        model_name,
        max_length=max_length,
        train_batch_size=(batch_size, 2),
        predict_batch_size=32,
        num_iterations=num_iterations,
        max_steps=max_steps,
        end_to_end=end_to_end,
        show_progress_bar=show_progress_bar,
        seed=seed,
        output_dir=output_dir,
        model_kwargs=model_kwargs,
        trainer_kwargs={"report_to": "none"},
    )


def private_output_dir() -> tempfile.TemporaryDirectory:
    """A throwaway directory for setfit/transformers trainer output (never the working directory)."""
    return tempfile.TemporaryDirectory(prefix="coding-backend-train-")


def dense_setfit_proba(setfit_model, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
    """Dense (n, codes) probabilities from a trained SetFitModel.

    Bug: small-text's multi-label ``predict_proba`` returns a sparse matrix that drops every
    probability at or below 0.5 (and ``predict()`` raises). Query strategies and per-code
    thresholds need the full probabilities, so we ask setfit directly.
    """
    if len(texts) == 0:
        return np.zeros((0, _setfit_num_codes(setfit_model)), dtype=np.float64)
    proba = setfit_model.predict_proba(list(texts), batch_size=batch_size, as_numpy=True)
    return np.asarray(proba, dtype=np.float64)


def _setfit_num_codes(setfit_model) -> int:
    head = setfit_model.model_head
    if hasattr(head, "n_codes_"):  # the chain head
        return int(head.n_codes_)
    if hasattr(head, "estimators_"):
        return len(head.estimators_)
    return int(getattr(head, "out_features", 0))


def autocast(precision: str, device_type: str) -> contextlib.AbstractContextManager:
    """torch's autocast to `precision` ("fp32": none) for inference on `device_type`."""
    if precision == "fp32":
        return contextlib.nullcontext()
    import torch

    return torch.autocast(device_type, dtype={"bf16": torch.bfloat16}[precision])


def native_bf16_cpu() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX-512 BF16 or AMX), where bf16 is fast.

    torch only says so through private helpers; a torch without them counts as no."""
    import torch

    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in checks)


def import_setfit():
    """Import setfit and put its log level back at what TRANSFORMERS_VERBOSITY asks for; returns
    SetFitModel.

    Bug: setfit 1.2's ``setfit/data.py`` calls ``logging.set_verbosity_info()`` when it is
    imported, so every model load printed "model_head.pkl not found … You should TRAIN this model"
    and every training its banner into the server's log, whatever the verbosity was set to.
    """
    from setfit import SetFitModel
    from setfit import logging as setfit_logging

    wanted = os.environ.get("TRANSFORMERS_VERBOSITY", "warning").lower()
    setfit_logging.set_verbosity(setfit_logging.get_log_levels_dict().get(wanted, setfit_logging.WARNING))
    return SetFitModel


@contextlib.contextmanager
def trainer_prints_silenced(silenced: bool) -> Iterator[None]:
    """While `silenced`, what the training libraries print to stdout goes nowhere.

    transformers' Trainer prints its log dictionaries (the loss at the first step, the runtime
    at the end: ``{'embedding_loss': …}``, ``{'train_runtime': …}``) with ``print`` through its
    printer or progress callback, whatever the logging settings, into the server's log every
    round. Nothing there needs anyone's action; the CLI's ``train`` keeps them with its progress bars.
    """
    if not silenced:
        yield
        return
    with contextlib.redirect_stdout(io.StringIO()):
        yield


def quiet_training_environment() -> None:
    """Keep third-party trainers from phoning home or writing trackers' files into the CWD."""
    os.environ.setdefault("WANDB_DISABLED", "true")
    os.environ.setdefault("DISABLE_MLFLOW_INTEGRATION", "TRUE")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def contrastive_pairs_problem(label_matrix: np.ndarray) -> str | None:
    """Why setfit cannot draw contrastive pairs from these labels, or None when it can.

    Bug: setfit's ContrastiveDataset cycles through its positive and negative pair lists by index
    and fails with a bare IndexError when one list is empty: no segment carries a code (no
    positive pair), or every two segments share a code (no negative pair; pairs include a
    segment with itself, as setfit draws them).
    """
    shares = (label_matrix @ label_matrix.T) > 0
    pairs = np.triu(np.ones(shares.shape, dtype=bool))
    if not (shares & pairs).any():
        return "no labeled segment has a code yet: SetFit needs pairs of segments that share a code"
    if not (~shares & pairs).any():
        return (
            f"every two of the {len(label_matrix)} labeled segments share a code: SetFit needs at "
            "least one pair without a common code (label a segment with different codes)"
        )
    return None


def balanced_transformer_classification(*args, **kwargs):
    """small-text's TransformerBasedClassification whose ``class_weight='balanced'`` means, for
    multi-label, each code's negatives over its positives (BCE's ``pos_weight``).

    Bug: small-text computes the multi-label weights as if the codes were exclusive classes,
    (all positives of all codes − this code's) / this code's, divided by the smallest when that
    is above 1. A code on three segments in four then weighs its positives at 1 or more instead of
    1/3, and the transformer learns to give every frequent code to every segment. (The subclass
    is made here, not at import, to keep small-text's import lazy; only its trained Hugging Face
    model is kept, so it is never pickled.)
    """
    import torch
    from small_text.integrations.transformers.classifiers.classification import (
        TransformerBasedClassification,
    )

    class BalancedTransformerClassification(TransformerBasedClassification):
        def initialize_class_weights(self, sub_train):
            if self.class_weight != "balanced" or not self.multi_label:
                return super().initialize_class_weights(sub_train)
            matrix = sub_train.y.toarray()  # as wide as the highest target label: pad to every code
            matrix = np.pad(matrix, ((0, 0), (0, self.num_classes - matrix.shape[1])))
            return torch.tensor(multilabel_pos_weight(matrix), dtype=torch.float).to(self.device)

    return BalancedTransformerClassification(*args, **kwargs)


@contextlib.contextmanager
def balanced_head_loss(head, label_matrix: np.ndarray) -> Iterator[None]:
    """While it lasts, setfit's differentiable head trains with each code's negatives over its
    positives as BCE's ``pos_weight`` (CLASS_WEIGHT=balanced, as the logistic heads have it).

    Limitation: setfit's head loss is an unweighted BCE and small-text passes no weights, so with
    20–60 labels a code on a quarter of the segments never reached 0.5 (mental health: F1 0 at 60
    labeled on five seeds of five, docs/results.md). The loss is an attribute of the head only
    during training: a saved head pickles no closure.
    """
    import torch

    device = next(head.parameters()).device
    weight = torch.tensor(multilabel_pos_weight(label_matrix), dtype=torch.float, device=device)
    head.get_loss_fn = lambda: torch.nn.BCEWithLogitsLoss(pos_weight=weight)
    try:
        yield
    finally:
        del head.get_loss_fn


def multilabel_pos_weight(label_matrix: np.ndarray) -> np.ndarray:
    """Each code's negatives over its positives: what makes BCE weigh both sides alike. A code with
    no positive (or no negative) yet gets 1: there is nothing to balance."""
    positives = np.asarray(label_matrix).sum(axis=0).astype(np.float64)
    negatives = len(label_matrix) - positives
    weights = np.ones_like(positives)
    both = (positives > 0) & (negatives > 0)
    weights[both] = negatives[both] / positives[both]
    return weights
