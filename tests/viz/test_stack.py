"""The stack views: token similarity and vector norms, against numbers computed here independently."""

import numpy as np
import pytest

from viz import cosine_similarity, norms_figure, position_curves_figure, similarity_figure

TOKENS = ["the", "cat", "<b>", "the"]


def test_similarity_is_the_cosine_of_every_pair_on_a_fixed_scale():
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((4, 6)).astype(np.float32)
    vectors[3] = 2.5 * vectors[0]  # same direction: cosine 1
    fig = similarity_figure(vectors, TOKENS)
    z = np.asarray(fig.data[0].z, dtype=np.float64)
    for i in range(4):
        for j in range(4):
            a, b = vectors[i].astype(np.float64), vectors[j].astype(np.float64)
            assert z[i, j] == pytest.approx(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)), abs=1e-6)
    assert z[0, 3] == pytest.approx(1.0, abs=1e-6)
    assert (fig.data[0].zmin, fig.data[0].zmax) == (-1.0, 1.0)
    assert list(fig.layout.xaxis.ticktext) == ["the", "cat", "&lt;b&gt;", "the"]


def test_a_zero_vector_has_similarity_zero_not_nan():
    assert np.array_equal(cosine_similarity(np.zeros((2, 3))), np.zeros((2, 2)))


def test_norms_are_the_length_of_every_token_after_every_stage():
    rng = np.random.default_rng(1)
    stream = rng.standard_normal((3, 4, 5)).astype(np.float32)  # (stages, n, d)
    fig = norms_figure(stream, TOKENS, stage_labels=["input", "L1", "L2"])
    z = np.asarray(fig.data[0].z, dtype=np.float64)
    np.testing.assert_allclose(z, np.sqrt((stream.astype(np.float64) ** 2).sum(-1)), rtol=1e-6)
    assert list(fig.layout.yaxis.ticktext) == ["input", "L1", "L2"]
    with pytest.raises(ValueError, match="3 stages but 2 stage labels"):
        norms_figure(stream, TOKENS, stage_labels=["a", "b"])


def test_position_curves_carry_the_table_and_mark_the_sentence():
    positions = np.arange(20, dtype=np.float64)[:, None]  # (20, 1)
    table = np.concatenate([np.sin(positions), np.cos(positions / 7)], axis=1).astype(np.float32)  # (20, 2)
    fig = position_curves_figure(table, [0, 1], n_tokens=5)
    lines = [trace for trace in fig.data if trace.mode == "lines"]
    markers = [trace for trace in fig.data if trace.mode == "markers"]
    assert [line.name for line in lines] == ["Dimension 0", "Dimension 1"]
    for line, marker, dim in zip(lines, markers, (0, 1), strict=True):
        np.testing.assert_array_equal(np.asarray(line.y), table[:, dim])
        np.testing.assert_array_equal(np.asarray(marker.x), np.arange(5))
        np.testing.assert_array_equal(np.asarray(marker.y), table[:5, dim])
    with pytest.raises(ValueError, match="dimension 2 is out of range"):
        position_curves_figure(table, [2], n_tokens=5)
    with pytest.raises(ValueError, match="n_tokens=21"):
        position_curves_figure(table, [0], n_tokens=21)
