"""The all-heads overview: one PNG of block-averaged thumbnails, clickable per head, light at 512 tokens."""

import base64
import io
import json

import numpy as np
import plotly.io as pio
import pytest
from PIL import Image

from viz.colours import COLOUR_SCHEMES, lookup_table
from viz.overview import GAP_PX, overview_image, thumbnails
from viz.pooling import block_mean

MIB = 1024 * 1024


def decode(figure) -> np.ndarray:
    """The RGB pixels of the overview's image, as the browser receives them."""
    source = figure.data[0].source
    assert source.startswith("data:image/png;base64,")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(source.split(",", 1)[1]))).convert("RGB"))


def one_hot_columns(layers: int, heads: int, tokens: int, column: int) -> np.ndarray:
    attentions = np.zeros((layers, heads, tokens, tokens), dtype=np.float32)
    attentions[..., column] = 1.0
    return attentions


def test_block_mean_averages_each_block_by_hand():
    matrix = np.arange(16, dtype=float).reshape(4, 4)
    np.testing.assert_allclose(block_mean(matrix, 2, 2), [[2.5, 4.5], [10.5, 12.5]])
    # Uneven blocks: 5 columns into 2 blocks of 2 and 3.
    row = np.array([[1.0, 3.0, 0.0, 6.0, 0.0]])
    np.testing.assert_allclose(block_mean(row, 1, 2), [[2.0, 2.0]])
    # As many blocks as cells: exact.
    np.testing.assert_allclose(block_mean(matrix, 4, 4), matrix)


def test_thumbnails_keep_small_heads_exact_and_square():
    rng = np.random.default_rng(0)
    attentions = rng.dirichlet(np.ones(10), size=(2, 3, 10)).astype(np.float32)
    heads = thumbnails(attentions, thumb=64)
    assert heads.shape == (2, 3, 60, 60)  # 10 tokens, each 6×6 pixels
    np.testing.assert_allclose(heads[1, 2, ::6, ::6], attentions[1, 2], rtol=1e-6)


def test_long_heads_are_averaged_down_to_the_thumbnail_size():
    attentions = np.random.default_rng(1).dirichlet(np.ones(200), size=(1, 1, 200)).astype(np.float32)
    heads = thumbnails(attentions, thumb=64)
    assert heads.shape == (1, 1, 64, 64)
    # Every source block's mean weight is kept: each thumbnail row still sums to 64/200 of the row total.
    np.testing.assert_allclose(heads[0, 0].sum(axis=1) * 200 / 64, 1.0, rtol=0.05)


def test_image_has_one_thumbnail_per_head_separated_by_gaps():
    layers, heads, tokens = 3, 4, 16
    figure = overview_image(one_hot_columns(layers, heads, tokens, 0))
    image = decode(figure)
    size = 64  # 16 tokens × 4 pixels
    assert image.shape == (layers * (size + GAP_PX) - GAP_PX, heads * (size + GAP_PX) - GAP_PX, 3)
    assert (image[size : size + GAP_PX] == 255).all()  # white gap between layers 1 and 2


def test_a_head_with_all_weight_on_one_column_shows_one_bright_column():
    layers, heads, tokens, column = 2, 3, 16, 5
    attentions = np.full((layers, heads, tokens, tokens), 1 / tokens, dtype=np.float32)
    attentions[1, 2] = 0.0
    attentions[1, 2, :, column] = 1.0
    image = decode(overview_image(attentions))
    zoom, step = 4, 64 + GAP_PX
    block = image[step : step + 64, 2 * step : 2 * step + 64]
    table = lookup_table(COLOUR_SCHEMES["colour"])
    bright = block[:, column * zoom : (column + 1) * zoom]
    assert (bright == table[-1]).all()  # weight 1: the top colour (yellow)
    assert (np.delete(block, np.s_[column * zoom : (column + 1) * zoom], axis=1) == table[0]).all()  # weight 0: the bottom colour


def test_grayscale_overview_is_black_and_white():
    image = decode(overview_image(one_hot_columns(1, 1, 4, 2), scheme="grayscale"))
    assert (image[:, 2 * 16 : 3 * 16] == 255).all() and (image[:, :32] == 0).all()


def test_every_thumbnail_is_clickable_with_its_layer_and_head():
    layers, heads = 2, 3
    figure = overview_image(one_hot_columns(layers, heads, 8, 0), selected=(1, 2))
    markers = figure.data[1]
    # 1-based [layer, head] as plain JSON lists (a numpy block would reach Streamlit's selection event as {"0": .., "1": ..}).
    assert json.loads(figure.to_json())["data"][1]["customdata"] == [[layer, head] for layer in (1, 2) for head in (1, 2, 3)]
    assert markers.marker.opacity == 0.0
    assert figure.layout.hoverdistance == -1  # a click anywhere on a thumbnail picks the nearest marker
    # Each marker sits inside its own thumbnail.
    size = 64  # 8 tokens × 8 pixels
    step = size + GAP_PX
    for (layer, head), x, y in zip(markers.customdata, markers.x, markers.y):
        assert (head - 1) * step <= x < (head - 1) * step + size and (layer - 1) * step <= y < (layer - 1) * step + size
    outline = figure.layout.shapes[0]  # around layer 2, head 3 (0-based (1, 2))
    assert outline.x0 < 2 * step and outline.x1 > 2 * step + size - 1 and outline.y0 < step and outline.y1 > step + size - 1
    assert list(figure.layout.xaxis.ticktext) == ["H1", "H2", "H3"] and list(figure.layout.yaxis.ticktext) == ["L1", "L2"]


def test_selected_head_outside_the_model_is_an_error():
    with pytest.raises(ValueError, match="outside"):
        overview_image(one_hot_columns(1, 2, 4, 0), selected=(1, 0))


def test_overview_of_72_heads_at_512_tokens_stays_under_its_budget():
    """Issue 7: the all-heads grid did not finish at 512 tokens; the budget is 5 MB."""
    rng = np.random.default_rng(0)
    attentions = rng.random((6, 12, 512, 512), dtype=np.float32) ** 8
    attentions /= attentions.sum(axis=-1, keepdims=True)
    figure = overview_image(attentions, selected=(0, 0))
    assert decode(figure).shape == (6 * 68 - 4, 12 * 68 - 4, 3)
    assert len(pio.to_json(figure, validate=False).encode()) <= 5 * MIB


def test_seq2seq_heads_keep_their_shape():
    """11 output characters over 26 input characters: cells stay square, 2×2 pixels each."""
    attentions = np.random.default_rng(2).dirichlet(np.ones(26), size=(1, 1, 11)).astype(np.float32)
    heads = thumbnails(attentions, thumb=64)
    assert heads.shape == (1, 1, 22, 52)
    np.testing.assert_allclose(heads[0, 0, ::2, ::2], attentions[0, 0], rtol=1e-6)
