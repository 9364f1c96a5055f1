"""Draw the notebook's three diagrams into images/: the content cost, the unrolling and the
Gram matrix.

Run from anywhere: ``python images/draw_diagrams.py``. Each diagram uses a tiny activation
(n_H = 2, n_W = 3, n_C = 3) whose channels have their own colours, so the reader can follow
where each channel's numbers go.
"""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import FancyArrowPatch, Rectangle  # noqa: E402

HERE = Path(__file__).resolve().parent
N_H, N_W, N_C = 2, 3, 3
COLOURS = ("#e4572e", "#4caf50", "#2e86de")  # channel 0, 1, 2
LIGHT = ("#f6c3b5", "#c5e6c6", "#b6d6f5")
DPI = 90


def _cell(ax, x, y, colour, text, size=0.9, fontsize=9, edge="white", ink="white"):
    ax.add_patch(Rectangle((x, y), size, size, facecolor=colour, edgecolor=edge, linewidth=1.5))
    ax.text(
        x + size / 2,
        y + size / 2,
        text,
        ha="center",
        va="center",
        fontsize=fontsize,
        color=ink,
        fontweight="bold",
    )


def _volume(ax, x0, y0, label, size=0.8):
    """An (n_H, n_W, n_C) activation drawn as its n_C channel grids, one above the other.

    Pixels are numbered 1 to n_H n_W in memory order; (x0, y0) is the bottom-left corner.
    """
    height = N_H * size
    for c in range(N_C):
        bottom = y0 + (N_C - 1 - c) * (height + 0.35)
        for h in range(N_H):
            for w in range(N_W):
                _cell(
                    ax,
                    x0 + w * size,
                    bottom + (N_H - 1 - h) * size,
                    COLOURS[c],
                    str(h * N_W + w + 1),
                    size=size * 0.95,
                    fontsize=8,
                )
        ax.text(
            x0 - 0.15,
            bottom + height / 2,
            f"channel {c + 1}",
            ha="right",
            va="center",
            fontsize=8,
            color=COLOURS[c],
        )
    ax.text(x0 + N_W * size / 2, y0 - 0.3, label, ha="center", va="top", fontsize=10)


def _arrow(ax, start, end, text="", text_dy=0.3):
    ax.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=16, color="#555"))
    if text:
        ax.text(
            (start[0] + end[0]) / 2,
            (start[1] + end[1]) / 2 + text_dy,
            text,
            ha="center",
            va="bottom",
            fontsize=9,
            color="#333",
        )


def _finish(fig, ax, name, xlim, ylim):
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    ax.set_aspect("equal")
    ax.axis("off")
    fig.savefig(HERE / name, dpi=DPI, bbox_inches="tight", facecolor="white")
    plt.close(fig)


def content_cost():
    fig, ax = plt.subplots(figsize=(9, 3.6))
    _volume(ax, 1.4, 0.6, r"$a^{(C)}$: content image")
    _volume(ax, 7.0, 0.6, r"$a^{(G)}$: generated image")
    ax.text(4.4, 3.4, "$-$", fontsize=24, ha="center", va="center")
    _arrow(ax, (9.8, 3.4), (11.8, 3.4), "square each\nentry, sum all", text_dy=0.5)
    ax.text(
        12.0,
        3.4,
        r"$J_{content} = \frac{1}{4\, n_H n_W n_C}\sum (a^{(C)} - a^{(G)})^2$",
        fontsize=13,
        va="center",
    )
    ax.text(
        0,
        7.0,
        "Content cost: one hidden layer's activations of C and G, compared entry by "
        r"entry (here $n_H=2$, $n_W=3$, $n_C=3$)",
        fontsize=10,
        va="bottom",
    )
    _finish(fig, ax, "diagram_content_cost.png", (-0.6, 20.2), (-0.6, 7.6))


def unrolling():
    fig, ax = plt.subplots(figsize=(10, 5.4))
    size = 0.8
    values = np.arange(N_H * N_W * N_C).reshape(N_H, N_W, N_C)  # memory order: channel fastest
    position = lambda v: str(v // N_C + 1)  # noqa: E731
    channel = lambda v: v % N_C  # noqa: E731

    def matrix(x0, top, rows):
        for r, row in enumerate(rows):
            for c, v in enumerate(row):
                _cell(
                    ax,
                    x0 + c * size,
                    top - (r + 1) * size,
                    COLOURS[channel(v)],
                    position(v),
                    size=size * 0.95,
                    fontsize=8,
                )

    _volume(ax, 1.3, 3.0, r"$a$: $(n_H, n_W, n_C) = (2, 3, 3)$")
    _arrow(ax, (4.0, 6.6), (5.8, 6.6), "reshape to\n$(n_H n_W, n_C)$")
    matrix(6.1, 8.6, values.reshape(N_H * N_W, N_C))
    ax.text(7.3, 3.6, "one column\nper channel", ha="center", va="top", fontsize=9)
    _arrow(ax, (8.9, 7.5), (10.5, 7.5), "transpose")
    matrix(10.8, 8.6, values.reshape(N_H * N_W, N_C).T)
    ax.text(
        13.2,
        5.9,
        r"right: $(n_C, n_H n_W)$, each row is one channel",
        ha="center",
        va="top",
        fontsize=10,
        color="#1b5e20",
        fontweight="bold",
    )
    _arrow(ax, (2.5, 1.9), (10.5, 1.4), "")
    ax.text(
        6.4,
        1.0,
        r"reshape straight to $(n_C, n_H n_W)$",
        ha="center",
        va="top",
        fontsize=9,
        color="#333",
    )
    matrix(10.8, 2.6, values.reshape(N_C, N_H * N_W))
    ax.text(
        13.2,
        -0.1,
        "wrong: the same shape, but each row mixes channels",
        ha="center",
        va="top",
        fontsize=10,
        color="#b71c1c",
        fontweight="bold",
    )
    ax.text(
        -0.6,
        9.0,
        "Unrolling for the style cost: reshape, then transpose (numbers: the "
        "pixel; colours: the channel)",
        fontsize=11,
        va="bottom",
    )
    _finish(fig, ax, "diagram_unrolling.png", (-0.8, 17.0), (-0.8, 9.6))


def gram():
    fig, ax = plt.subplots(figsize=(10, 3.4))
    # A: (n_C, n_H n_W), one row per channel.
    for r in range(N_C):
        for c in range(N_H * N_W):
            _cell(ax, c, 2 - r, COLOURS[r], "", size=0.9)
    ax.text(
        3.0,
        -0.35,
        r"$A$: $(n_C, n_H n_W)$, row $i$ = channel $i$",
        ha="center",
        va="top",
        fontsize=10,
    )
    ax.text(6.6, 1.45, r"$\times$", fontsize=20, ha="center", va="center")
    # A^T: (n_H n_W, n_C), one column per channel.
    for r in range(N_H * N_W):
        for c in range(N_C):
            _cell(ax, 7.4 + c * 0.55, 2.9 - (r + 1) * 0.55, COLOURS[c], "", size=0.5)
    ax.text(8.2, -0.55, r"$A^T$", ha="center", va="top", fontsize=10)
    ax.text(9.8, 1.45, "=", fontsize=20, ha="center", va="center")
    # G: (n_C, n_C); entry (i, j) blends the colours of channels i and j.
    for i in range(N_C):
        for j in range(N_C):
            colour = COLOURS[i] if i == j else LIGHT[i]
            _cell(
                ax,
                10.6 + j,
                2 - i,
                colour,
                f"$G_{{{i + 1}{j + 1}}}$",
                fontsize=10,
                edge=COLOURS[j],
                ink="white" if i == j else "#333",
            )
    ax.text(12.0, -0.35, r"$G = A A^T$: $(n_C, n_C)$", ha="center", va="top", fontsize=10)
    ax.text(
        14.2,
        2.3,
        r"$G_{ij} = $ (row $i$) $\cdot$ (row $j$):"
        "\n"
        "how much channels $i$ and $j$\nfire together",
        fontsize=10,
        va="center",
    )
    ax.text(
        14.2, 0.6, r"diagonal $G_{ii}$: how active" "\n" r"channel $i$ is", fontsize=10, va="center"
    )
    ax.text(
        0,
        3.6,
        "The Gram (style) matrix: dot products of every pair of channels, "
        "wherever in the image they fire",
        fontsize=11,
        va="bottom",
    )
    _finish(fig, ax, "diagram_gram.png", (-0.3, 19.4), (-1.2, 4.2))


if __name__ == "__main__":
    content_cost()
    unrolling()
    gram()
    print("wrote", ", ".join(sorted(p.name for p in HERE.glob("diagram_*.png"))))
