"""Colours, fonts, token labels and the export config that every figure shares.

One module decides how a number becomes a colour, so that the same weight has the same
colour in every chart, and how a token becomes a label, so that no token can turn into
markup on an axis.
"""

from __future__ import annotations

import html
import math
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from plotly import colors as px_colors

Palette = Literal["default", "colorblind"]
PALETTES: tuple[str, ...] = ("default", "colorblind")

# Signed values (scores, Q, K, V, context): reversed so that negative is the cool end and
# positive the warm end, with 0 in the pale middle. PuOr is a ColorBrewer scale that stays
# distinguishable under the common colour-vision deficiencies.
DIVERGING_SCALES: dict[str, str] = {"default": "RdBu_r", "colorblind": "PuOr_r"}
# Softmax weights in [0, 1]: Blues is near-white at 0, so "no attention" reads as empty;
# cividis was designed to look the same with and without red-green colour blindness.
SEQUENTIAL_SCALES: dict[str, str] = {"default": "Blues", "colorblind": "cividis"}

DEFAULT_FONT_SIZE = 14  # readable from the back of a classroom on a projector
MAX_CELLS_PER_AXIS_FOR_VALUES = 24  # above this, printed numbers overlap in a normal-sized chart
HOVER_VALUE_FORMAT = ".4f"  # the hover has room for the precision of the worked example
MASK_MARK = "×"  # drawn in every cell whose key the query may not attend to
DEFAULT_FILENAME = "attention"  # used when a requested filename has no ASCII letter or digit left


MAX_LABEL_CHARS = 32  # a longer token is cut, with "…", where it labels an axis or a hover


def token_labels(tokens: Sequence[str]) -> list[str]:
    """HTML-escaped tokens for tick text and hover text, each at most MAX_LABEL_CHARS long.

    Plotly renders a few tags (`<b>`, `<br>`, `<a>`) in any text it draws, so a token such
    as `<br>` would break an axis. `&`, `<` and `>` are escaped, and Plotly turns the
    entities back into the literal characters. Quotes are left alone on purpose: Plotly
    decodes `&lt;`, `&gt;` and `&amp;` but would print `&quot;` as it stands. A token is
    cut before it is escaped, so no entity is cut in half: one 5,000-character "word"
    would otherwise take all of every chart's width as margin and squeeze the cells flat.
    """
    if isinstance(tokens, str):
        raise TypeError(f"tokens must be a sequence of strings, not the single string {tokens!r}")
    return [html.escape(_shortened(str(token)), quote=False) for token in tokens]


def _shortened(text: str) -> str:
    return text if len(text) <= MAX_LABEL_CHARS else text[: MAX_LABEL_CHARS - 1] + "…"


def number_text(value: float, decimals: int = 4) -> str:
    """A number as a table or a heatmap cell prints it: fixed decimals, no sign on a zero
    (a masked key's weight · v rounds to -0.0000 otherwise), and a masked score as "−∞"
    (a table would print `-Infinity`)."""
    if value == -math.inf:
        return "−∞"
    return f"{round(value, decimals) + 0.0:.{decimals}f}"  # `+ 0.0` turns -0.0 into 0.0


_ASCII_PUNCTUATION = re.compile(r"""([!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~])""")


def markdown_literal(text: str) -> str:
    """`text` for a Markdown cell (st.table renders Markdown), shown exactly as typed.

    CommonMark lets any ASCII punctuation be backslash-escaped and then prints it
    literally, so escaping all of it leaves no emphasis, link, code span or HTML tag.
    """
    return _ASCII_PUNCTUATION.sub(r"\\\1", text)


def check_style(palette: str, font_size: float) -> None:
    """Reject a palette or font size that would otherwise fail deep inside Plotly."""
    if palette not in PALETTES:
        raise ValueError(f"palette={palette!r} is invalid: must be one of {PALETTES}")
    if isinstance(font_size, bool) or not isinstance(font_size, (int, float)) or not 0 < font_size <= 100:
        raise ValueError(f"font_size={font_size!r} is invalid: must be a number in (0, 100]")


@dataclass(frozen=True)
class ChartStyle:
    """How every chart looks: its colour palette and its font size in pixels. One object for
    all of a page's charts, checked once, so a bad palette fails where it is chosen."""

    palette: Palette = "default"
    font_size: float = DEFAULT_FONT_SIZE

    def __post_init__(self) -> None:
        check_style(self.palette, self.font_size)


def values_are_shown(show_values: bool | None, n_rows: int, n_columns: int) -> bool:
    """Whether to print numbers in the cells: the caller's choice, else only when they fit."""
    if show_values is not None:
        return show_values
    return max(n_rows, n_columns) <= MAX_CELLS_PER_AXIS_FOR_VALUES


def base_layout(title: str, font_size: float) -> dict[str, Any]:
    """Layout shared by every figure: projector-sized font, tight margins, no wasted title space.

    Backgrounds are transparent so that the gaps (masked cells, the space between tiles)
    show the page colour in both light and dark themes.
    """
    layout: dict[str, Any] = {
        "font": {"size": font_size},
        "hoverlabel": {"font": {"size": font_size}},
        "margin": {"l": 8, "r": 8, "t": 8, "b": 8},
        "paper_bgcolor": "rgba(0,0,0,0)",
        "plot_bgcolor": "rgba(0,0,0,0)",
    }
    if title:
        layout["title"] = {"text": title, "x": 0, "xanchor": "left"}
        layout["margin"]["t"] = 2 * font_size + 16  # one line of title text plus breathing room
    return layout


def pinned_fonts(layout: dict[str, Any], font_size: float) -> dict[str, Any]:
    """`layout` with the size of every axis's tick labels and title, and of the figure's
    title, written out instead of inherited from `font`.

    A host's theme may set those sizes itself (Streamlit's draws tick labels at 12 px
    whatever `font.size` says); the tokens on the axes are what a class reads from the back
    of the room, so they keep the figure's size. Plain dict work: no cost on the hot path.
    """
    for name, axis in layout.items():
        if name.startswith(("xaxis", "yaxis")) and isinstance(axis, dict):
            axis["tickfont"] = {**axis.get("tickfont", {}), "size": font_size}
            title = axis.setdefault("title", {})
            title["font"] = {**title.get("font", {}), "size": font_size}
    if isinstance(layout.get("title"), dict):
        layout["title"]["font"] = {**layout["title"].get("font", {}), "size": font_size}
    return layout


def colorbar(title: str) -> dict[str, Any]:
    """A slim colour bar titled with what the colour means."""
    return {"title": {"text": title}, "thickness": 14, "outlinewidth": 0}


def cell_axis(title: str, *, top_down: bool = False, **extra: Any) -> dict[str, Any]:
    """An axis for heatmap cells at 0..n-1; `top_down` puts cell 0 at the top, as in a table.

    No `automargin`: it makes Plotly measure every label and draw the chart again, which
    was most of the browser's time on each change of head. `token_margins` sizes the
    margins from the labels instead.
    """
    return {
        "title": {"text": title},
        "autorange": "reversed" if top_down else True,
        "showgrid": False,  # grid lines would cross the cells
        "zeroline": False,
        "automargin": False,
        **extra,
    }


def text_width(text: str, font_size: float) -> float:
    """Roughly how wide `text` draws, in pixels: CJK and other wide characters take an em,
    the rest about 0.6 em (a generous average for a sans-serif font)."""
    plain = html.unescape(text)
    return sum(font_size if unicodedata.east_asian_width(ch) in "WF" else 0.6 * font_size for ch in plain)


ROTATE_ABOVE_EM = 2.5  # x labels wider than this (in ems) are drawn at 45 degrees, so they never collide


def token_margins(
    layout: dict[str, Any],
    font_size: float,
    row_labels: Sequence[str],
    column_labels: Sequence[str],
    *,
    may_slant: bool = True,  # False where ticks are far apart (one per tile) and never collide
) -> None:
    """Margins that fit the tick labels and axis titles, and slanted x labels when they are long.

    Replaces Plotly's automargin (see `cell_axis`); the labels are known here, so their
    room can be reserved before the browser draws anything.
    """
    title_room = 2.2 * font_size  # one line of axis title, with its gap (less and Plotly pushes it onto short labels)
    widest_row = max((text_width(label, font_size) for label in row_labels), default=0.0)
    widest_column = max((text_width(label, font_size) for label in column_labels), default=0.0)
    slanted = may_slant and widest_column > ROTATE_ABOVE_EM * font_size
    column_room = (0.71 * widest_column + 0.8 * font_size) if slanted else 1.4 * font_size
    layout["margin"]["l"] = round(widest_row + title_room + 12)
    layout["margin"]["b"] = round(column_room + title_room + 8)
    if slanted:
        layout["xaxis"]["tickangle"] = -45


MAX_TOKEN_TICKS = 24  # more labels than this overlap on a chart of the usual height: label every k-th token


def token_tick_step(n_tokens: int) -> int:
    """Label every k-th token so that at most MAX_TOKEN_TICKS labels share an axis."""
    return max(1, math.ceil(n_tokens / MAX_TOKEN_TICKS))


def axis_with_token_ticks(title: str, labels: list[str], *, top_down: bool = False) -> dict[str, Any]:
    """A numeric axis with a tick per token (per k-th token for long sentences).

    Numeric, not categorical: a categorical axis merges repeated labels, so the two "the"
    of "the cat saw the dog" would collapse into one row. Past MAX_TOKEN_TICKS tokens the
    labels would be drawn on top of each other, unreadable and slow (the browser measures
    every one), so only every k-th is labelled; the hover still names every cell's tokens.
    """
    step = token_tick_step(len(labels))
    return cell_axis(
        title,
        top_down=top_down,
        tickmode="array",
        tickvals=list(range(0, len(labels), step)),
        ticktext=labels[::step],
    )


def chart_config(filename: str, image_format: Literal["png", "svg"] = "png", scale: int = 2) -> dict[str, Any]:
    """The `config=` of `st.plotly_chart`: a download button that names the file sensibly.

    The browser saves the file under this name on any operating system, so it is reduced
    to ASCII letters, digits, `.`, `_` and `-` (accents are dropped, other characters
    become `_`). `scale` multiplies the pixel size of a PNG, for slides.
    """
    if image_format not in ("png", "svg"):
        raise ValueError(f"image_format={image_format!r} is invalid: must be 'png' or 'svg'")
    if isinstance(scale, bool) or not isinstance(scale, int) or not 1 <= scale <= 8:
        raise ValueError(f"scale={scale!r} is invalid: must be an integer from 1 to 8")
    return {
        "toImageButtonOptions": {"format": image_format, "filename": safe_filename(filename), "scale": scale},
        "displaylogo": False,
        # A heatmap has no points to pick with a box or lasso: the buttons would only confuse.
        "modeBarButtonsToRemove": ["select2d", "lasso2d"],
    }


def safe_filename(name: str) -> str:
    """`name` reduced to a portable ASCII file name (without extension)."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", ascii_name).strip("._-")
    return cleaned if re.search(r"[A-Za-z0-9]", cleaned) else DEFAULT_FILENAME


def curve_colours(palette: Palette) -> tuple[str, str]:
    """(scaled, unscaled) line colours: the cool and the warm end of the palette's diverging scale.

    Taken from the same scale as the heatmaps, so the colour-blind choice changes the lines
    too; the unscaled curve is the warm one because its softmax runs hot (saturates).
    """
    scale = px_colors.get_colorscale(DIVERGING_SCALES[palette])  # [[position, colour], ...] cool to warm
    return scale[1][1], scale[-2][1]  # one step in from each end: the darkest ends read as black


def line_layout(title: str, font_size: float) -> dict[str, Any]:
    """`base_layout` with room on the left and bottom for tick labels and axis titles."""
    layout = base_layout(title, font_size)
    layout["margin"] |= {"l": round(3.5 * font_size), "b": round(3.5 * font_size)}
    return layout


CELL_VALUE_DECIMALS = 2  # numbers printed inside cells: two decimals fit a small cell


def cell_texts(values: np.ndarray, masked: np.ndarray | None, *, show_values: bool) -> np.ndarray | None:
    """What each cell prints: its value rounded, `MASK_MARK` where masked, or nothing.

    Formatted here rather than with a Plotly `texttemplate` on z so that a masked cell can
    print its mark instead of a number, and so that tests can read what every cell shows.
    Returns None when no cell prints anything, which leaves the text out of the figure.
    """
    has_masked = masked is not None and bool(masked.any())
    if not show_values and not has_masked:
        return None
    texts = np.full(values.shape, "", dtype=object)  # (rows, columns)
    if show_values:
        finite = np.isfinite(values)
        texts[finite] = [number_text(value, CELL_VALUE_DECIMALS) for value in values[finite].tolist()]
    if has_masked:
        texts[masked] = MASK_MARK
    return texts


def text_style(texts: np.ndarray | None) -> dict[str, object]:
    """The Heatmap arguments that print `cell_texts` in the cells (nothing when it is None)."""
    return {"text": texts, "texttemplate": None if texts is None else "%{text}"}


def token_pairs(row_labels: list[str], column_labels: list[str]) -> np.ndarray:
    """(rows, columns, 2) the row and column token of every cell, for a hover that names both."""
    pairs = np.empty((len(row_labels), len(column_labels), 2), dtype=object)
    pairs[..., 0] = np.array(row_labels, dtype=object)[:, None]
    pairs[..., 1] = np.array(column_labels, dtype=object)[None, :]
    return pairs
