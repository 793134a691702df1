"""Simulation results → summary.md and the study's figures (PNG), from the rows of results.csv.

Figures follow the study's research notice: macro-F1 per round for each configuration, F1 per
code, and training time per configuration stacked by round. Means and standard deviations are
over seeds; the configuration order is the grid's.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

FIGURES = ("macro_f1.png", "per_code_f1.png", "train_seconds.png")


def write_report(
    out: Path, rows: list[dict], codes: Sequence[str], protocol: str, more: Sequence[str] = ()
) -> None:
    """summary.md and the figures in `out`; `protocol` is one paragraph saying what was simulated,
    `more` the sections of other reports (research/validation_report.py) to put before the figures."""
    frame = pd.DataFrame(rows)
    order = list(dict.fromkeys(frame["config"]))
    summary = summary_markdown(frame, order, codes, protocol, more)
    (out / "summary.md").write_text(summary, encoding="utf-8")
    figures = (
        macro_f1_figure(frame, order),
        per_code_figure(frame, order, codes),
        seconds_figure(frame, order),
    )
    plt = pyplot()
    for figure, name in zip(figures, FIGURES, strict=True):
        figure.savefig(out / name, dpi=110)
        plt.close(figure)


def _mean_sd(values: pd.Series) -> str:
    if len(values) < 2:
        return f"{values.mean():.3f}"
    return f"{values.mean():.3f} ± {values.std():.3f}"


def _seconds(value: float) -> str:
    """Whole seconds, with one decimal below 10 s so fast baselines do not all read 0 or 1."""
    return f"{value:.1f}" if value < 10 else f"{value:.0f}"


def _mean_seconds(values: pd.Series) -> str:
    return _seconds(values.mean())


def markdown_table(header: Sequence[str], body: list[list[str]]) -> str:
    """A Markdown table: one header row, then a row per list of cells."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cells) + " |" for cells in body]
    return "\n".join(lines)


def _per_round(frame: pd.DataFrame, name: str, labeled: list, column: str, show) -> list[str]:
    """One cell per labeled count: `show` applied to that round's values of `column` over seeds."""
    rows = frame[frame.config == name]
    return [show(rows[rows.n_labeled == n][column]) for n in labeled]


def summary_markdown(
    frame: pd.DataFrame, order: list[str], codes: Sequence[str], protocol: str, more: Sequence[str] = ()
) -> str:
    """Mean ± sd macro-F1 per configuration and labeled count, per-code F1, times, the best config."""
    labeled = sorted(frame["n_labeled"].unique())
    last = frame[frame["n_labeled"] == labeled[-1]]
    macro = [[name, *_per_round(frame, name, labeled, "macro_f1", _mean_sd)] for name in order]
    per_code = [
        [name, *[f"{last[last.config == name][f'f1_{code}'].mean():.2f}" for code in codes]] for name in order
    ]
    run_seconds = frame.groupby(["config", "seed"])["train_seconds"].sum().groupby("config").mean()
    seconds = [
        [name, *_per_round(frame, name, labeled, "train_seconds", _mean_seconds), _seconds(run_seconds[name])]
        for name in order
    ]
    kept = _bodies_kept(frame, order)
    best = last.groupby("config")["macro_f1"].mean().idxmax()
    seeds = last[last.config == best]["seed"].nunique()  # merged reports: configurations may differ
    spread = "1 seed" if seeds == 1 else f"mean ± sd over {seeds} seeds"
    best_line = (
        f"Best configuration at {labeled[-1]} labeled: **{best}**, macro-F1 "
        f"{_mean_sd(last[last.config == best]['macro_f1'])} ({spread})."
    )
    return (
        "\n\n".join(
            [
                "# Simulation summary",
                protocol,
                best_line,
                f"## Macro-F1 by labeled segments ({over_seeds(frame)})",
                markdown_table(["config", *map(str, labeled)], macro),
                f"## F1 per code at {labeled[-1]} labeled ({over_seeds(frame, 'mean')})",
                markdown_table(["config", *codes], per_code),
                f"## Training seconds per round ({over_seeds(frame, 'mean')}) and per run",
                markdown_table(["config", *map(str, labeled), "total"], seconds),
                *kept,
                *more,
                "Figures: " + ", ".join(f"![{name}]({name})" for name in FIGURES),
            ]
        )
        + "\n"
    )


def _bodies_kept(frame: pd.DataFrame, order: list[str]) -> list[str]:
    """How often each judged configuration kept its fine-tuned body (body_selection: held_out)."""
    if "body_kept" not in frame:
        return []
    judged = frame.dropna(subset=["body_kept"])
    counts = [
        f"{name}: {int(judged[judged.config == name]['body_kept'].astype(bool).sum())} of "
        f"{int((judged.config == name).sum())} judged rounds"
        for name in order
        if (judged.config == name).any()
    ]
    return ["Fine-tuned bodies kept over the base body: " + "; ".join(counts) + "."] if counts else []


def pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed
    import matplotlib.pyplot as plt

    return plt


def over_seeds(frame: pd.DataFrame, what: str = "mean ± sd") -> str:
    """What a figure's values summarise: "1 seed" (no mean, no sd), or "mean ± sd over 3 seeds"
    (over 2–3 seeds in a merged report whose configurations ran different seeds)."""
    seeds = frame.groupby("config")["seed"].nunique()
    if seeds.max() == 1:
        return "1 seed"
    count = f"{seeds.max()}" if seeds.min() == seeds.max() else f"{seeds.min()}–{seeds.max()}"
    return f"{what} over {count} seeds"


def integer_ticks(axis) -> None:
    """Whole numbers only on an axis of counts (labeled segments): no tick at 22.5."""
    from matplotlib.ticker import MaxNLocator

    axis.set_major_locator(MaxNLocator(integer=True))


def line_styles(order: list[str]) -> dict[str, dict]:
    """One look per configuration: ten colours, then the same colours dashed, then dotted, so that a
    merged report of more than ten configurations draws no two alike."""
    looks = [("-", "o"), ("--", "s"), (":", "^")]  # one per ten configurations
    styles = {}
    for i, name in enumerate(order):
        linestyle, marker = looks[i // 10 % len(looks)]
        styles[name] = {"color": f"C{i % 10}", "linestyle": linestyle, "marker": marker}
    return styles


def macro_f1_figure(frame: pd.DataFrame, order: list[str]):
    """Macro-F1 over labeled segments, a line per configuration (with its sd band over seeds)."""
    plt = pyplot()
    figure, axes = plt.subplots(figsize=(9, 4.5))
    for name, style in line_styles(order).items():
        stats = frame[frame.config == name].groupby("n_labeled")["macro_f1"].agg(["mean", "std"])
        axes.plot(stats.index, stats["mean"], label=name, **style)
        if stats["std"].notna().any():  # one seed has no sd: no band
            low, high = stats["mean"] - stats["std"], stats["mean"] + stats["std"]
            axes.fill_between(stats.index, low, high, color=style["color"], alpha=0.1)
    title = f"Macro-F1 per round ({over_seeds(frame)})"
    axes.set(xlabel="labeled segments", ylabel="macro-F1 (test set)", title=title)
    integer_ticks(axes.xaxis)
    axes.grid(alpha=0.3)
    # the legend beside the lines, not over them
    axes.legend(fontsize="small", loc="center left", bbox_to_anchor=(1.01, 0.5))
    figure.tight_layout()
    return figure


def per_code_figure(frame: pd.DataFrame, order: list[str], codes: Sequence[str]):
    """F1 over labeled segments, one panel per code, a line per configuration (mean over seeds)."""
    plt = pyplot()
    columns = min(3, len(codes))
    rows = -(-len(codes) // columns)
    figure, axes = plt.subplots(
        rows, columns, figsize=(4.2 * columns, 3.2 * rows), squeeze=False, sharey=True
    )
    styles = line_styles(order)
    for ax, code in zip(axes.flat, codes, strict=False):
        for name, style in styles.items():
            stats = frame[frame.config == name].groupby("n_labeled")[f"f1_{code}"].mean()
            ax.plot(stats.index, stats.values, label=name, markersize=4, **style)
        ax.set(title=code, xlabel="labeled segments", ylim=(0, 1))
        integer_ticks(ax.xaxis)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(codes) :]:
        ax.axis("off")
    axes.flat[0].set_ylabel(f"F1 ({over_seeds(frame, 'mean')})")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="lower center", ncol=min(4, len(order)), fontsize="small")
    legend_rows = -(-len(order) // 4)
    figure.tight_layout(rect=(0, 0.02 + 0.035 * legend_rows, 1, 1))
    return figure


def seconds_figure(frame: pd.DataFrame, order: list[str]):
    """Training seconds per run, a bar per configuration stacked by round (mean over seeds)."""
    plt = pyplot()
    table = frame.groupby(["config", "n_labeled"])["train_seconds"].mean().unstack("n_labeled").reindex(order)
    figure, axes = plt.subplots(figsize=(7, 4.5))
    bottom = pd.Series(0.0, index=table.index)
    for n_labeled in table.columns:
        axes.bar(table.index, table[n_labeled], bottom=bottom, label=f"{n_labeled} labeled")
        bottom += table[n_labeled]
    ylabel = f"training seconds ({over_seeds(frame, 'mean')})"
    axes.set(ylabel=ylabel, title="Training time per run, stacked by round")
    axes.tick_params(axis="x", labelrotation=20)
    axes.legend(fontsize="small")
    figure.tight_layout()
    return figure
