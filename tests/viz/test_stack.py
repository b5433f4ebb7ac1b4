"""The stack views: token similarity and vector norms, against numbers computed here independently."""

import numpy as np
import pytest

from viz import cosine_similarity, norms_figure, similarity_figure

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
