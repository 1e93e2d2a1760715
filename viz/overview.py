"""Every head of a model at once, as one raster image: layers down, heads across.

A grid of 72 Plotly heatmaps of 512×512 cells sends hundreds of megabytes to the browser; the
eye cannot see more than a thumbnail per head anyway. Each head is block-averaged to at most
``thumb``×``thumb`` pixels, coloured in numpy with the heatmaps' own colour scale and sent as one
PNG. An invisible marker over each thumbnail makes it clickable, so the page can open that head.
"""

from __future__ import annotations

import base64
import io

import numpy as np
import plotly.graph_objects as go
from PIL import Image

from viz.colours import colourscale, paint
from viz.pooling import block_mean
from viz.words import _

GAP_PX = 4
BACKGROUND = (255, 255, 255)
SELECTED_COLOUR = "crimson"
# Pillow's fastest zlib level: the image is small and the page waits for it on every rerun.
PNG_COMPRESSION = 1


def thumbnails(attentions: np.ndarray, thumb: int = 64) -> np.ndarray:
    """(L, H, h, w) block-averaged heads, enlarged by an integer factor to fill ``thumb`` pixels.

    A head smaller than ``thumb`` keeps one block per token, repeated k×k times (k the same on
    both axes, so cells stay square); a larger one is averaged down to ``thumb`` pixels.
    """
    attentions = np.asarray(attentions, dtype=np.float32)
    if attentions.ndim != 4:
        raise ValueError(f"attentions must be (layers, heads, target, source), got shape {attentions.shape}")
    if thumb < 1:
        raise ValueError(f"thumb must be at least 1 pixel, got {thumb}")
    target, source = attentions.shape[-2:]
    rows, cols = min(target, thumb), min(source, thumb)
    pooled = block_mean(attentions, rows, cols)
    zoom = max(1, thumb // max(rows, cols))
    return np.repeat(np.repeat(pooled, zoom, axis=-2), zoom, axis=-1)


def mosaic(heads: np.ndarray, scheme: str = "colour", gap: int = GAP_PX) -> np.ndarray:
    """(L, H, h, w) values on 0..1 to one RGB image, thumbnails separated by ``gap`` white pixels."""
    layers, n_heads, height, width = heads.shape
    image = np.empty((layers * (height + gap) - gap, n_heads * (width + gap) - gap, 3), dtype=np.uint8)
    image[...] = BACKGROUND
    pixels = paint(heads, colourscale(scheme))
    for layer in range(layers):
        top = layer * (height + gap)
        for head in range(n_heads):
            left = head * (width + gap)
            image[top : top + height, left : left + width] = pixels[layer, head]
    return image


def png_data_uri(image: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(image, mode="RGB").save(buffer, format="PNG", compress_level=PNG_COMPRESSION)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def overview_image(
    attentions: np.ndarray,
    *,
    scheme: str = "colour",
    selected: tuple[int, int] | None = None,
    thumb: int = 64,
) -> go.Figure:
    """All heads (L, H, T, S) as one image: layer ℓ is row ℓ, head h is column h, shared 0..1 scale.

    ``selected`` (0-based layer, head) is outlined. Each thumbnail carries an invisible marker
    whose ``customdata`` is [layer, head], 1-based, so that with
    ``st.plotly_chart(fig, on_select="rerun", selection_mode="points")`` a click on a thumbnail
    comes back as ``event.selection["points"][0]["customdata"]``. Hover snaps to the nearest
    thumbnail (``hoverdistance=-1``), so a click anywhere on a thumbnail selects it.
    """
    heads = thumbnails(attentions, thumb)
    layers, n_heads, height, width = heads.shape
    image = mosaic(heads, scheme)
    step_x, step_y = width + GAP_PX, height + GAP_PX
    centre_x = np.arange(n_heads) * step_x + (width - 1) / 2
    centre_y = np.arange(layers) * step_y + (height - 1) / 2
    grid_x, grid_y = np.meshgrid(centre_x, centre_y)
    head_ids, layer_ids = np.meshgrid(np.arange(1, n_heads + 1), np.arange(1, layers + 1))
    figure = go.Figure(
        [
            go.Image(source=png_data_uri(image), x0=0, y0=0, dx=1, dy=1, hoverinfo="skip"),
            go.Scatter(
                x=grid_x.ravel(),
                y=grid_y.ravel(),
                customdata=np.stack([layer_ids.ravel(), head_ids.ravel()], axis=1).tolist(),
                mode="markers",
                marker=dict(
                    symbol="square",
                    size=12,
                    opacity=0.0,
                    # The image's shared 0..1 colour bar rides on the invisible markers.
                    color=np.zeros(layers * n_heads, dtype=np.float32),
                    colorscale=colourscale(scheme),
                    cmin=0.0,
                    cmax=1.0,
                    showscale=True,
                    colorbar=dict(title=_("weight"), thickness=12, len=max(0.5, min(1.0, 3 / layers))),
                ),
                # Plotly dims unselected points and recolours the selected one; both must stay invisible.
                selected=dict(marker=dict(opacity=0.0)),
                unselected=dict(marker=dict(opacity=0.0)),
                hovertemplate=_("layer %{customdata[0]}, head %{customdata[1]}<br>click to open it") + "<extra></extra>",
                showlegend=False,
            ),
        ]
    )
    figure.update_xaxes(
        range=[-0.5, image.shape[1] - 0.5],
        side="top",
        tickmode="array",
        tickvals=centre_x,
        ticktext=[f"H{h + 1}" for h in range(n_heads)],
        showgrid=False,
        zeroline=False,
        constrain="domain",
    )
    figure.update_yaxes(
        range=[image.shape[0] - 0.5, -0.5],
        tickmode="array",
        tickvals=centre_y,
        ticktext=[f"L{layer + 1}" for layer in range(layers)],
        showgrid=False,
        zeroline=False,
        scaleanchor="x",
        constrain="domain",
    )
    if selected is not None:
        layer, head = selected
        if not (0 <= layer < layers and 0 <= head < n_heads):
            raise ValueError(f"selected head {selected} is outside {layers} layers x {n_heads} heads")
        left, top = head * step_x - 0.5, layer * step_y - 0.5
        figure.add_shape(type="rect", x0=left - 1, y0=top - 1, x1=left + width + 1, y1=top + height + 1, line=dict(color=SELECTED_COLOUR, width=3))
    # Thumbnails are drawn about 1:1 on a laptop screen, at least 60 px a row on a phone.
    figure.update_layout(
        height=int(min(1400, max(200, 40 + image.shape[0] * min(1.0, 900 / image.shape[1]) + 40))),
        margin=dict(l=10, r=10, t=40, b=10),
        hovermode="closest",
        hoverdistance=-1,
        clickmode="event+select",
        dragmode=False,
        plot_bgcolor="white",
    )
    return figure
