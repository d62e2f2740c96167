"""The SVG charts: valid XML, escaped text, tooltips on every point, axes that cover the data."""

import xml.etree.ElementTree as ET
from decimal import Decimal

import pytest

from billing import charts
from billing.charts import Series

SVG = "{http://www.w3.org/2000/svg}"


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)  # raises on anything that is not well-formed XML


def texts(root: ET.Element) -> list[str]:
    return [t.text or "" for t in root.iter(f"{SVG}text")]


def tooltips(root: ET.Element) -> list[str]:
    """The <title> of every point or bar (the chart's own title is the svg's first child)."""
    return [t.text or "" for shape in root.iter() if shape.tag != f"{SVG}svg" for t in shape.findall(f"{SVG}title")]


@pytest.mark.parametrize(
    ("top", "expected"),
    [
        (0, [0.0, 1.0]),
        (1, [0, 0.2, 0.4, 0.6, 0.8, 1.0]),
        (7, [0, 2, 4, 6, 8]),
        (43, [0, 10, 20, 30, 40, 50]),
        (0.0031, [0, 0.001, 0.002, 0.003, 0.004]),
    ],
)
def test_ticks_are_round_and_cover_the_top_value(top, expected):
    ticks = charts.nice_ticks(top)
    assert ticks == pytest.approx(expected)
    assert ticks[-1] >= top


def test_counts_get_whole_ticks():
    assert charts.nice_ticks(1, whole=True) == [0, 1]
    assert charts.nice_ticks(3, whole=True) == [0, 1, 2, 3]


def test_line_chart_has_a_point_with_a_tooltip_for_every_value():
    svg = charts.line_chart(
        ["Nov 01", "Nov 02", "Nov 03"], [Series("Spend", [1, 0, 2.5])], title="Spend", fmt=charts.usd
    )
    root = parse(svg)

    assert root.get("role") == "img"
    assert len(list(root.iter(f"{SVG}circle"))) == 3
    assert tooltips(root) == ["Nov 01 · Spend: $1.00", "Nov 02 · Spend: $0", "Nov 03 · Spend: $2.50"]
    assert root.find(f"{SVG}desc").text.startswith("From Nov 01 to Nov 03. Spend: total $3.50, peak $2.50 at Nov 03")
    assert "$2.50" in texts(root)  # the y axis reaches the peak


def test_two_series_get_a_legend_and_differ_by_more_than_colour():
    svg = charts.line_chart(["a", "b"], [Series("Requests", [3, 4]), Series("Errors", [0, 1])], title="Requests")
    root = parse(svg)
    lines = list(root.iter(f"{SVG}polyline"))

    assert [line.get("stroke") for line in lines] == list(charts.PALETTE[:2])
    assert lines[0].get("stroke-dasharray") is None and lines[1].get("stroke-dasharray")
    assert {"Requests", "Errors"} <= set(texts(root))


def test_text_is_escaped():
    svg = charts.bar_chart([("<script>alert(1)</script>", 2)], title='Spend "by" <team>')
    root = parse(svg)

    assert "<script>" not in svg
    assert "<script>alert(1)</script>: 2" in tooltips(root)
    assert root.find(f"{SVG}title").text == 'Spend "by" <team>'


def test_empty_data_says_so_instead_of_drawing_an_axis():
    for svg in (charts.line_chart([], [Series("Spend", [])], title="Spend"), charts.bar_chart([], title="By team")):
        assert "No data for this range" in texts(parse(svg))
    assert "No data for this range" in texts(parse(charts.line_chart(["a"], [Series("x", [0])], title="Zero")))


def test_bars_are_as_long_as_their_values_and_long_labels_are_shortened():
    svg = charts.bar_chart([("mistral-small-latest-with-a-long-name", Decimal("4")), ("b", Decimal("1"))], title="T")
    rects = [float(r.get("width")) for r in parse(svg).iter(f"{SVG}rect")]

    assert rects[0] == pytest.approx(4 * rects[1])
    assert "mistral-small-la…" in texts(parse(svg))


def test_many_labels_are_thinned_on_the_axis_but_every_point_keeps_its_tooltip():
    labels = [f"d{i}" for i in range(90)]
    root = parse(charts.line_chart(labels, [Series("Requests", list(range(90)))], title="R"))

    assert len([t for t in texts(root) if t.startswith("d")]) <= charts.MAX_X_LABELS + 1
    assert len(tooltips(root)) == 90


def test_chart_ids_are_distinct_per_title():
    assert 'id="chart-spend-over-time-title"' in charts.line_chart(["a"], [Series("s", [1])], title="Spend over time")


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (0, "$0"),
        (1234.5, "$1,234.50"),
        (0.5, "$0.50"),
        (0.00042, "$0.00042"),
        (0.0000123, "$0.000012"),
        (0.005, "$0.005"),
    ],
)
def test_usd(value, shown):
    assert charts.usd(value) == shown


def test_counts_and_durations():
    assert [charts.count(v) for v in (0, 12, 1500, 2_300_000)] == ["0", "12", "1.5k", "2.3M"]
    assert [charts.milliseconds(v) for v in (12.4, 1500)] == ["12 ms", "1.50 s"]
