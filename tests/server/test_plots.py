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
