"""A token-level transformer classifier with one sigmoid output per code (MODEL_KIND=transformer).

Trained through small-text's transformer integration: much faster to train than SetFit, a
little weaker with few labels according to the study.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from backend.learning import compat
from backend.learning.base import CodingModel
from backend.learning.devices import resolved_device
from backend.learning.options import ModelOptions


class TransformerCodingModel(CodingModel):
    """A token-level transformer with one sigmoid output per code."""

    kind = "transformer"

    def __init__(self, hf_model, tokenizer, codes, thresholds, max_length: int, device: str):
        super().__init__(codes, thresholds)
        self.hf_model = hf_model.to(device).eval()
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.device = device

    def _proba(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        import torch

        parts = []
        with torch.inference_mode():
            for start in range(0, len(texts), batch_size):
                batch = self.tokenizer(
                    texts[start : start + batch_size],
                    truncation=True,
                    max_length=self.max_length,
                    padding=True,
                    return_tensors="pt",
                ).to(self.device)
                parts.append(torch.sigmoid(self.hf_model(**batch).logits).cpu().numpy())
        return np.concatenate(parts).astype(np.float64)

    def _save_weights(self, directory: Path) -> None:
        self.hf_model.save_pretrained(str(directory / "transformer"))
        self.tokenizer.save_pretrained(str(directory / "transformer"))

    def _state(self) -> dict:
        return {"max_length": self.max_length}

    @classmethod
    def load(cls, directory: Path, state: dict, device: str) -> TransformerCodingModel:
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        path = str(directory / "transformer")
        hf_model = AutoModelForSequenceClassification.from_pretrained(path)
        tokenizer = AutoTokenizer.from_pretrained(path)
        return cls(hf_model, tokenizer, state["codes"], state["thresholds"], state["max_length"], device)


def train_transformer(
    texts: list[str], label_matrix: np.ndarray, codes: list[str], options: ModelOptions, show_progress: bool
) -> TransformerCodingModel:
    """Fine-tune MODEL_NAME as a sequence classifier for TRANSFORMER_EPOCHS."""
    from small_text.integrations.transformers.classifiers.classification import TransformerModelArguments
    from small_text.integrations.transformers.datasets import TransformersDataset
    from transformers import AutoTokenizer

    encoder, tuning, head = options.encoder, options.fine_tune, options.head
    device = resolved_device(encoder.device)
    tokenizer = AutoTokenizer.from_pretrained(encoder.model_name)
    dataset = compat.multilabel_dataset(
        texts, label_matrix, TransformersDataset, tokenizer=tokenizer, max_length=encoder.max_length
    )
    with compat.private_output_dir() as cache_dir:
        classifier = compat.balanced_transformer_classification(
            TransformerModelArguments(encoder.model_name, show_progress_bar=show_progress),
            num_classes=len(codes),
            multi_label=True,
            num_epochs=tuning.epochs,
            lr=tuning.learning_rate,
            class_weight="balanced" if head.class_weight == "balanced" else None,
            device=device,
            cache_dir=cache_dir,
        )
        classifier.fit(dataset)
    thresholds = head.default_thresholds(len(codes))
    return TransformerCodingModel(classifier.model, tokenizer, codes, thresholds, encoder.max_length, device)
