"""Fine-tuning only the upper layers of a SetFit body, with the frozen lower ones run once per segment.

A contrastive round of the default budget runs 40 steps of 32 segments: 1,280 passes through the
body for at most a few hundred distinct segments. With the embeddings and the lower layers fixed
(FREEZE_LOWER_LAYERS), a segment's output of the last frozen layer is the same at every step as
long as those layers run without dropout, so the round computes it once per segment and keeps it
(a few hundred KB each) for the rest of the round. Only the trained layers then run forward and
backward at each step (docs/benchmarks.md: the measured cost per step).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

log = logging.getLogger(__name__)


def encoder_layers(body) -> nn.ModuleList | None:
    """The transformer layers of a sentence-transformers body (BERT family), or None when unknown."""
    return getattr(getattr(body[0].auto_model, "encoder", None), "layer", None)


def freeze_lower_layers(body, share: float) -> int:
    """Keep the embeddings and the lowest `share` of the transformer layers fixed while fine-tuning.

    Nothing below the first trained layer then needs a gradient: no backward pass there and nothing
    to recompute for checkpointing. Returns how many layers were frozen (0 for an encoder whose
    layers this cannot find, which then trains whole).
    """
    encoder, layers = body[0].auto_model, encoder_layers(body)
    if not share:
        return 0
    if layers is None:
        log.warning(
            "FREEZE_LOWER_LAYERS: no layers found in %s; training every layer", type(encoder).__name__
        )
        return 0
    frozen = int(len(layers) * share)
    if frozen:
        getattr(encoder, "embeddings", encoder.get_input_embeddings()).requires_grad_(False)
    for layer in layers[:frozen]:
        layer.requires_grad_(False)
        layer.gradient_checkpointing = False
    return frozen


class SegmentKeys:
    """The current batch's segments as keys (their token ids without the padding), captured as the
    body's embedding layer is called (sentence-transformers calls the model's forward directly,
    past any hook on the model itself)."""

    def __init__(self, pad_token_id: int) -> None:
        self.pad_token_id = pad_token_id
        self.keys: list[bytes] = []
        self.lengths: list[int] = []

    def capture(self, embeddings: nn.Module, _args, kwargs) -> None:
        embeddings.eval()  # frozen too: without dropout, the layers above see the same input each step
        ids = kwargs["input_ids"].numpy(force=True)
        tokens = [row[row != self.pad_token_id] for row in ids]  # padded on the right
        self.keys, self.lengths = [t.tobytes() for t in tokens], [len(t) for t in tokens]


class OncePerSegment(nn.Module):
    """The frozen lower layers as one module that, in training, runs them once per segment (without
    dropout, under no_grad) and serves their output from memory afterwards. Outside training (the
    head's encoding, evaluation) it runs them as usual."""

    def __init__(self, layers: nn.ModuleList, segments: SegmentKeys):
        super().__init__()
        self.layers, self.segments, self.outputs = layers, segments, {}

    def forward(self, hidden_states: torch.Tensor, attention_mask=None, *args, **kwargs) -> torch.Tensor:
        if not self.training:
            return self._run(hidden_states, attention_mask, *args, **kwargs)
        keys, lengths = self.segments.keys, self.segments.lengths
        new = [i for i, key in enumerate(keys) if key not in self.outputs]
        if new:
            self._keep(new, hidden_states, attention_mask, *args, **kwargs)
        served = hidden_states.new_zeros(hidden_states.shape)  # padding: masked out above and in pooling
        for i, (key, length) in enumerate(zip(keys, lengths, strict=True)):
            served[i, :length] = self.outputs[key]
        return served

    def _keep(self, rows: list[int], hidden_states: torch.Tensor, attention_mask, *args, **kwargs) -> None:
        """Run the layers for the segments at `rows` of the batch, without dropout, and keep their output."""
        batch = len(hidden_states)
        if attention_mask is not None and attention_mask.shape[0] == batch:  # else broadcast over the batch
            attention_mask = attention_mask[rows]
        self.layers.eval()
        with torch.no_grad():
            computed = self._run(hidden_states[rows], attention_mask, *args, **kwargs)
        for row, output in zip(rows, computed, strict=True):
            self.outputs[self.segments.keys[row]] = output[: self.segments.lengths[row]].clone()

    def _run(self, hidden_states: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        for layer in self.layers:
            hidden_states = layer(hidden_states, *args, **kwargs)
        return hidden_states


@contextmanager
def lower_layers_once_per_segment(body, frozen: int) -> Iterator[None]:
    """While fine-tuning, run the `frozen` lowest layers once per segment; restored afterwards."""
    layers, encoder = encoder_layers(body), body[0].auto_model
    right_padded = getattr(body[0].tokenizer, "padding_side", "right") == "right"
    pad_token_id = getattr(encoder.config, "pad_token_id", None)
    known = layers is not None and hasattr(encoder, "embeddings") and pad_token_id is not None
    if not (frozen and known and right_padded):
        yield  # the frozen layers run at every step, as usual
        return
    segments = SegmentKeys(pad_token_id)
    hook = encoder.embeddings.register_forward_pre_hook(segments.capture, with_kwargs=True)
    encoder.encoder.layer = nn.ModuleList([OncePerSegment(layers[:frozen], segments), *layers[frozen:]])
    try:
        yield
    finally:
        hook.remove()
        encoder.encoder.layer = layers
