"""One factory per model kind: what trains new models and loads saved ones (as small-text's
``AbstractClassifierFactory.new()``, here ``train()``: it trains). Jobs and simulations are handed a
factory; they never choose a model class themselves."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from backend.learning import compat
from backend.learning.base import STATE_FILE, CodingModel, ModelFormatError, validate_training_data
from backend.learning.options import ModelOptions
from backend.learning.setfit_model import SetFitCodingModel, train_setfit
from backend.learning.tfidf_model import train_tfidf, train_tfidf_embeddings
from backend.learning.transformer_model import TransformerCodingModel, train_transformer

log = logging.getLogger(__name__)
Trainer = Callable[[list[str], np.ndarray, list[str], ModelOptions, bool], CodingModel]
Loader = Callable[[Path, dict, str], CodingModel]


@dataclass(frozen=True)
class ModelKind:
    """How one kind of model is trained, and loaded again (None: it is never saved)."""

    name: str
    train: Trainer
    load: Loader | None


KINDS: dict[str, ModelKind] = {
    "setfit": ModelKind("setfit", train_setfit, SetFitCodingModel.load),
    "transformer": ModelKind("transformer", train_transformer, TransformerCodingModel.load),
    "tfidf": ModelKind("tfidf", train_tfidf, None),
    "tfidf-embeddings": ModelKind("tfidf-embeddings", train_tfidf_embeddings, None),
}


class ModelFactory:
    """Trains models of one kind with fixed options; `train()` is deterministic for SEED."""

    def __init__(self, options: ModelOptions):
        self.options = options
        self.kind = KINDS[options.kind]

    def train(
        self,
        texts: Sequence[str],
        label_matrix: np.ndarray,
        codes: Sequence[str],
        *,
        show_progress: bool = False,
    ) -> CodingModel:
        """A model trained on (texts, label matrix), or TrainingDataError naming what is wrong."""
        label_matrix = np.asarray(label_matrix, dtype=np.int64)
        validate_training_data(texts, label_matrix, codes)
        compat.quiet_training_environment()
        if self.kind.name != "tfidf":
            from transformers import set_seed

            set_seed(self.options.fine_tune.seed)
        started = time.perf_counter()
        with compat.trainer_prints_silenced(not show_progress):
            model = self.kind.train(list(texts), label_matrix, list(codes), self.options, show_progress)
        log.info(
            "trained %s model on %d segments x %d codes in %.1f s",
            model.kind,
            len(texts),
            len(codes),
            time.perf_counter() - started,
        )
        return model


def load_model(directory: Path, device: str = "cpu") -> CodingModel:
    """Load a model saved with :meth:`CodingModel.save`."""
    directory = Path(directory)
    state = json.loads((directory / STATE_FILE).read_text())
    kind = KINDS.get(state.get("kind"))
    if kind is None or kind.load is None:
        raise ModelFormatError(f"{directory} holds a model of unknown kind {state.get('kind')!r}")
    return kind.load(directory, state, device)
