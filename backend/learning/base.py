"""The interface every model kind shares, and the checks on training data.

The model knows nothing of Label Studio or HTTP: codes are an ordered list of strings and labels a
0/1 matrix with one column per code.
"""

from __future__ import annotations

import json
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from backend.errors import BackendError

log = logging.getLogger(__name__)

STATE_FILE = "coding_model.json"
PREDICT_CHUNK = 1000


class TrainingDataError(BackendError, ValueError):
    """The texts or labels given for training cannot be used; the message says why."""


class ModelFormatError(BackendError, ValueError):
    """A saved model that this code cannot load."""


class CodingModel(ABC):
    """A trained multi-label model over an ordered list of codes."""

    kind: str

    def __init__(self, codes: Sequence[str], thresholds: Sequence[float]):
        self.codes = list(codes)
        self.thresholds = np.asarray(thresholds, dtype=np.float64)

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Dense (n, codes) probabilities. A blank segment carries no code: its row is all zeros.

        Large inputs (a whole pool) are predicted in chunks, with a log line per chunk giving
        the count and an estimate of the time left.
        """
        proba = np.zeros((len(texts), len(self.codes)), dtype=np.float64)
        filled = [i for i, text in enumerate(texts) if text and text.strip()]
        started = time.perf_counter()
        for start in range(0, len(filled), PREDICT_CHUNK):
            chunk = filled[start : start + PREDICT_CHUNK]
            proba[chunk] = self._proba([texts[i] for i in chunk])
            done = start + len(chunk)
            if len(filled) > PREDICT_CHUNK:
                left = (time.perf_counter() - started) / done * (len(filled) - done)
                log.info("predicted %d/%d segments, about %.0f s left", done, len(filled), left)
        return proba

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        """Boolean (n, codes) decisions for pre-annotation, one threshold per code."""
        return self.decide(self.predict_proba(texts))

    def decide(self, proba: np.ndarray) -> np.ndarray:
        """Apply the per-code thresholds to probabilities already computed."""
        return proba >= self.thresholds[np.newaxis, :]

    def save(self, directory: Path) -> None:
        """Write everything needed to predict again into `directory` (which must not exist yet)."""
        directory = Path(directory)
        directory.mkdir(parents=True)
        self._save_weights(directory)
        state = {"kind": self.kind, "codes": self.codes, "thresholds": self.thresholds.tolist()}
        state.update(self._state())
        (directory / STATE_FILE).write_text(json.dumps(state, indent=2))

    @abstractmethod
    def _proba(self, texts: list[str]) -> np.ndarray: ...

    @abstractmethod
    def _save_weights(self, directory: Path) -> None: ...

    def _state(self) -> dict:
        return {}


def validate_training_data(texts: Sequence[str], label_matrix: np.ndarray, codes: Sequence[str]) -> None:
    """Refuse data that would train a broken model, naming the problem."""
    if not codes:
        raise TrainingDataError("no codes given: the label config must offer at least one code")
    if len(set(codes)) != len(codes):
        raise TrainingDataError(f"codes must be unique, got {list(codes)}")
    if label_matrix.ndim != 2 or label_matrix.shape != (len(texts), len(codes)):
        raise TrainingDataError(
            f"label matrix has shape {label_matrix.shape}, expected ({len(texts)}, {len(codes)}) "
            "(one row per text, one column per code)"
        )
    if len(texts) < 2:
        raise TrainingDataError(f"need at least 2 labeled segments to train, got {len(texts)}")
    blank = [i for i, text in enumerate(texts) if not isinstance(text, str) or not text.strip()]
    if blank:
        raise TrainingDataError(
            f"{len(blank)} training text(s) are empty or whitespace (positions {blank[:10]}); "
            "drop them before training"
        )
    if not np.isin(label_matrix, (0, 1)).all():
        raise TrainingDataError("label matrix must hold only 0 and 1")
