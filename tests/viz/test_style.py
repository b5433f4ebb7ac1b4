"""Token labels cannot become markup, downloads get portable names, and viz stays free of torch and Streamlit."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from viz import chart_config, matrix_figure, token_labels

ROOT = Path(__file__).resolve().parents[2]


def test_token_labels_escape_the_characters_plotly_reads_as_markup():
    tokens = ["<br>", "<script>alert(1)</script>", "a&b", "<b>", "&lt;", "我", "the"]
    assert token_labels(tokens) == [
        "&lt;br&gt;",
        "&lt;script&gt;alert(1)&lt;/script&gt;",
        "a&amp;b",
        "&lt;b&gt;",
        "&amp;lt;",  # shown as the five characters "&lt;", not as "<"
        "我",
        "the",
    ]


def test_token_labels_leave_quotes_alone_because_plotly_would_print_the_entity():
    assert token_labels(['"', "'", "it's"]) == ['"', "'", "it's"]


def test_token_labels_keep_duplicates_and_order():
    assert token_labels(["the", "cat", "the"]) == ["the", "cat", "the"]


def test_a_very_long_token_is_cut_for_its_label_before_it_is_escaped():
    assert token_labels(["a" * 5000]) == ["a" * 31 + "…"]
    assert token_labels(["<" * 40]) == ["&lt;" * 31 + "…"]  # no entity cut in half
    assert token_labels(["x" * 32]) == ["x" * 32]  # the longest label kept whole


def test_a_very_long_token_leaves_the_chart_its_cells():
    fig = matrix_figure(np.eye(2, dtype=np.float32), ["a" * 5000, "b"], ["a" * 5000, "b"], kind="weights")
    assert fig.layout.margin.l < 400 and fig.layout.margin.b < 400


def test_token_labels_refuse_a_bare_string():
    with pytest.raises(TypeError, match="single string"):
        token_labels("the cat")


def test_chart_config_sets_the_download_and_removes_selection_tools():
    config = chart_config("weights_L1H2", "svg", scale=3)
    assert config["toImageButtonOptions"] == {"format": "svg", "filename": "weights_L1H2", "scale": 3}
    assert config["displaylogo"] is False
    assert {"select2d", "lasso2d"} <= set(config["modeBarButtonsToRemove"])
    assert chart_config("x")["toImageButtonOptions"]["format"] == "png"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Q (L1H1)", "Q_L1H1"),
        ("softmax Café/ü", "softmax_Cafe_u"),
        ("我爱你 weights", "weights"),
        ("注意力", "attention"),
        ("../../etc/passwd", "etc_passwd"),
    ],
)
def test_chart_config_filenames_are_portable_ascii(name, expected):
    assert chart_config(name)["toImageButtonOptions"]["filename"] == expected


@pytest.mark.parametrize(
    ("options", "message"),
    [({"image_format": "jpeg"}, "image_format='jpeg' is invalid"), ({"scale": 0}, "scale=0 is invalid")],
)
def test_chart_config_refuses_bad_options(options, message):
    with pytest.raises(ValueError, match=message):
        chart_config("x", **options)


def test_viz_imports_neither_torch_nor_streamlit():
    code = "import viz, sys; assert 'torch' not in sys.modules and 'streamlit' not in sys.modules, sorted(sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-2000:]


def test_every_figure_pins_its_tick_and_title_sizes_against_a_hosts_theme():
    """Streamlit's theme draws ticks at 12 px unless the axis says otherwise (tokens must stay large)."""
    import numpy as np

    from viz import ChartStyle, heads_grid_figure, matrix_figure, qkv_figure, similarity_figure, vectors_figure

    tokens = ["我", "爱", "你"]
    weights = np.full((3, 3), 1 / 3, dtype=np.float32)
    vectors = np.ones((3, 4), dtype=np.float32)
    large = ChartStyle(font_size=22)
    figures = [
        matrix_figure(weights, tokens, tokens, kind="weights", title="w", style=large),
        vectors_figure(vectors, tokens, title="v", style=large),
        qkv_figure(vectors, vectors, vectors, tokens, title="qkv", style=large),
        similarity_figure(vectors, tokens, title="s", style=large),
        heads_grid_figure(weights[None, None], tokens, style=large),
    ]
    for fig in figures:
        layout = fig.to_plotly_json()["layout"]
        axes = [value for name, value in layout.items() if name.startswith(("xaxis", "yaxis"))]
        assert axes
        for axis in axes:
            assert axis["tickfont"]["size"] == 22
            assert axis["title"]["font"]["size"] == 22
        if "title" in layout:
            assert layout["title"]["font"]["size"] == 22


@pytest.mark.parametrize(("n", "step"), [(3, 1), (24, 1), (25, 2), (60, 3), (128, 6)])
def test_long_sentences_label_every_kth_token_and_keep_every_token_in_the_hover(n, step):
    import numpy as np

    from viz import matrix_figure

    tokens = [f"t{i}" for i in range(n)]
    fig = matrix_figure(np.full((n, n), 1 / n, dtype=np.float32), tokens, tokens, kind="weights")
    for axis in (fig.layout.xaxis, fig.layout.yaxis):
        assert list(axis.tickvals) == list(range(0, n, step))
        assert list(axis.ticktext) == tokens[::step]
        assert len(axis.ticktext) <= 24
    pairs = np.asarray(fig.data[0].customdata)
    assert pairs[n - 1, 0, 0] == f"t{n - 1}" and pairs[0, n - 1, 1] == f"t{n - 1}"  # every cell names its tokens
