"""simulate's figures say what they show: whole numbers on the labeled-segments axis, and a mean ± sd
band only over more than one seed (no training: rows written by hand)."""

import pandas as pd
import pytest

from backend.research.report import macro_f1_figure, per_code_figure, pyplot, seconds_figure


def frame(seeds: int) -> pd.DataFrame:
    """Four close rounds (20 to 23 labeled), where matplotlib's own ticks would fall at 20.5."""
    return pd.DataFrame(
        {"config": "setfit", "seed": seed, "n_labeled": n, "macro_f1": 0.5 + n / 100 + seed / 50}
        | {"train_seconds": 2.0, "f1_x": 0.4}
        for seed in range(1, seeds + 1)
        for n in (20, 21, 22, 23)
    )


@pytest.fixture
def axes_of():
    """The first axes of a figure, which is closed after the test."""
    figures = []

    def first_axes(figure):
        figures.append(figure)
        return figure.axes[0]

    yield first_axes
    for figure in figures:
        pyplot().close(figure)


def test_the_labeled_segments_axis_has_whole_ticks_only(axes_of):
    for axes in (
        axes_of(macro_f1_figure(frame(2), ["setfit"])),
        axes_of(per_code_figure(frame(2), ["setfit"], ["x"])),
    ):
        ticks = axes.get_xticks()
        assert len(ticks) and all(float(t).is_integer() for t in ticks), ticks


def test_one_seed_is_said_as_one_seed_without_an_sd_band(axes_of):
    axes = axes_of(macro_f1_figure(frame(1), ["setfit"]))
    assert axes.get_title() == "Macro-F1 per round (1 seed)"
    assert not axes.collections, "no band: one seed has no sd"
    assert axes_of(per_code_figure(frame(1), ["setfit"], ["x"])).get_ylabel() == "F1 (1 seed)"
    assert axes_of(seconds_figure(frame(1), ["setfit"])).get_ylabel() == "training seconds (1 seed)"


def test_several_seeds_are_counted_in_the_title_with_their_band(axes_of):
    axes = axes_of(macro_f1_figure(frame(3), ["setfit"]))
    assert axes.get_title() == "Macro-F1 per round (mean ± sd over 3 seeds)"
    assert len(axes.collections) == 1, "the sd band"
    assert axes_of(per_code_figure(frame(3), ["setfit"], ["x"])).get_ylabel() == "F1 (mean over 3 seeds)"


def test_the_summary_says_one_seed_where_there_is_no_spread_and_the_seed_count_where_there_is():
    from backend.research.report import summary_markdown

    one = summary_markdown(frame(1), ["setfit"], ["x"], "protocol")
    assert "## Macro-F1 by labeled segments (1 seed)" in one and "(mean ± sd" not in one
    assert "**setfit**, macro-F1 0.750 (1 seed)." in one
    three = summary_markdown(frame(3), ["setfit"], ["x"], "protocol")
    assert "## Macro-F1 by labeled segments (mean ± sd over 3 seeds)" in three
    assert "## F1 per code at 23 labeled (mean over 3 seeds)" in three
