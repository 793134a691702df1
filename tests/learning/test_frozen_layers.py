"""The frozen lower layers run once per segment while fine-tuning, and give what they would have given."""

import pytest

from backend.learning.frozen_layers import (
    OncePerSegment,
    freeze_lower_layers,
    lower_layers_once_per_segment,
)
from backend.learning.setfit_model import base_model
from tests.helpers import CODES

SHORT, LONG, OTHER = "My leg hurts.", "I cannot sleep, I worry all night and I am tired every day.", "I walk."


@pytest.fixture()
def body(tiny_settings):
    return base_model(CODES, tiny_settings.model.encoder_options()).setfit_model.model_body


def lower_output(body, texts: list[str], layers: int):
    """What the lower layers give each segment, run as usual in evaluation (no dropout)."""
    import torch

    body.eval()
    features = body.tokenize(texts)
    with torch.no_grad():
        hidden = body[0].auto_model(**features, output_hidden_states=True).hidden_states[layers]
    return [hidden[i, : int(n)] for i, n in enumerate(features["attention_mask"].sum(dim=1))]


def test_each_segment_runs_the_frozen_layers_once_and_is_served_the_same_in_any_batch(body):
    import torch

    frozen = freeze_lower_layers(body, 0.5)
    assert frozen == 3
    expected = dict(zip([SHORT, LONG, OTHER], lower_output(body, [SHORT, LONG, OTHER], frozen), strict=True))
    layers = body[0].auto_model.encoder.layer
    runs, served = [], []
    layers[0].register_forward_hook(lambda _m, args, _o: runs.append(len(args[0])))
    with lower_layers_once_per_segment(body, frozen):
        once = body[0].auto_model.encoder.layer[0]
        assert isinstance(once, OncePerSegment)
        once.register_forward_hook(lambda _m, _a, output: served.append(output))
        body.train()
        for batch in ([SHORT, LONG], [OTHER, SHORT], [LONG, SHORT, OTHER]):
            features = body.tokenize(batch)
            body(features)
            for text, row, n in zip(batch, served[-1], features["attention_mask"].sum(dim=1), strict=True):
                torch.testing.assert_close(row[: int(n)], expected[text], atol=1e-5, rtol=0)
    assert runs == [2, 1], "only the new segment of the second batch runs; the third is served from memory"
    assert body[0].auto_model.encoder.layer is layers and len(layers) == 6, "the layers are back"


def test_outside_training_the_frozen_layers_run_as_usual(body):
    frozen = freeze_lower_layers(body, 0.5)
    before = body.encode([SHORT, LONG])
    with lower_layers_once_per_segment(body, frozen):
        inside = body.encode([SHORT, LONG])  # the head's encoding during a fit
        assert not body[0].auto_model.encoder.layer[0].outputs, "nothing kept"
    assert abs(inside - before).max() < 1e-5


def test_nothing_is_frozen_at_share_zero(body):
    assert freeze_lower_layers(body, 0.0) == 0
    assert all(p.requires_grad for p in body[0].auto_model.encoder.layer[0].parameters())
