"""The status page's SVG charts: round ticks, a line per series, gaps where a value is missing."""

import xml.etree.ElementTree as ET

import pytest

from backend.server.plots import line_chart, nice_ticks

SVG = "{http://www.w3.org/2000/svg}"


def test_ticks_are_round_and_cover_the_range():
    assert nice_ticks(0, 1) == pytest.approx([0, 0.2, 0.4, 0.6, 0.8, 1.0])
    assert nice_ticks(8, 143) == [0, 50, 100, 150]
    assert nice_ticks(3, 3)[0] <= 3 <= nice_ticks(3, 3)[-1]


def test_a_chart_is_valid_svg_with_a_line_per_series_and_gaps():
    svg = line_chart(
        {
            "physical <health>": [(1, 0.5), (2, 0.6), (3, 0.7)],
            "mental": [(1, None), (2, 0.1), (3, None), (4, 0.3)],
        },
        xlabel="labeled segments",
        ylabel="F1",
        ylim=(0, 1),
        threshold=0.05,
    )
    root = ET.fromstring(svg)  # well-formed, names escaped
    assert len(root.findall(f"{SVG}polyline")) == 1, "three points of one code make one line"
    assert len(root.findall(f"{SVG}circle")) == 2, "isolated points between gaps are dots"
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert {"physical <health>", "mental", "threshold", "labeled segments", "F1"} <= set(texts)


def test_a_count_axis_has_whole_ticks_only():
    assert nice_ticks(0, 3, integer=True) == [0, 1, 2, 3]
    assert nice_ticks(20, 23, integer=True) == [20, 21, 22, 23]
    assert all(float(t).is_integer() for t in nice_ticks(0, 1234, integer=True))
    svg = line_chart({"a": [(20, 1), (21, 2), (23, 3)]}, xlabel="labeled", ylabel="positives", counts=True)
    ticks = [t.text for t in ET.fromstring(svg).iter(f"{SVG}text") if t.get("text-anchor") != "start"]
    numbers = [float(text) for text in ticks if text.replace(".", "").isdigit()]
    assert numbers and all(n.is_integer() for n in numbers), ticks


def test_the_legend_is_wide_enough_for_long_names():
    long = "Health, unspecific (health_unspecific)"
    root = ET.fromstring(line_chart({long: [(1, 1), (2, 2)]}, xlabel="x", ylabel="y"))
    assert float(root.get("width")) >= 640 - 170 + 40 + 6 * len(long)
    assert root.get("viewBox") == f"0 0 {root.get('width')} 240"
