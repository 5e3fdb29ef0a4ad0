"""Small PNG plots for asset metadata (matplotlib, no display needed)."""

from __future__ import annotations

import io
import math
from collections.abc import Sequence



def _pyplot():
    """matplotlib's pyplot with the file-only backend, imported at the first plot: every process
    that loads the graph (each run's, the sensors') would otherwise pay for it at start."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig, tight: bool = True) -> bytes:
    """The figure as PNG bytes, closed. `tight` crops to what is drawn, at the cost of drawing
    the figure twice; a figure laid out by hand passes False."""
    plt = _pyplot()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight" if tight else None)
    plt.close(fig)
    return buffer.getvalue()


def bars(labels: Sequence[str], values: Sequence[float], title: str, xlabel: str = "") -> bytes:
    """Horizontal bars, largest on top."""
    plt = _pyplot()
    pairs = sorted(zip(values, labels))
    fig, ax = plt.subplots(figsize=(6, 0.28 * len(pairs) + 1))
    ax.barh([p[1] for p in pairs], [p[0] for p in pairs], color="#3b6ea5")
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(xlabel)
    ax.tick_params(labelsize=8)
    return _png(fig)


def histogram(values: Sequence[float], title: str, xlabel: str, bins: int = 40,
              log_y: bool = False) -> bytes:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.hist(values, bins=bins, color="#3b6ea5")
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("count")
    if log_y:
        ax.set_yscale("log")
    return _png(fig)


# Priority classes of `circuit_map`: the share of the list's top ranks each covers, its colour.
MAP_CLASSES = (("top 10 %", 0.10, "#c0392b"), ("top 30 %", 0.30, "#e67e22"),
               ("the rest", 1.00, "#5d8aa8"))


def circuit_map(circuits, title: str) -> bytes:
    """Circuits at their coordinates coloured by priority class (`MAP_CLASSES`, by rank), each
    zone labelled at the centroid of its circuits, with a legend; a small PNG.

    Takes a frame with circuit_id, zone, latitude, longitude and rank (1 = first). Circuits
    without coordinates are left off and the title says how many. Raises ValueError naming the
    columns missing.
    """
    missing = [c for c in ("circuit_id", "zone", "latitude", "longitude", "rank")
               if c not in circuits.columns]
    if missing:
        raise ValueError(f"circuit_map: the circuits lack column(s) {', '.join(missing)}")
    n = len(circuits)
    placed = circuits.dropna(subset=["latitude", "longitude"])
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4))
    # laid out by hand, the legend in the right-hand margin: no second drawing to crop it
    fig.subplots_adjust(left=0.11, right=0.70, bottom=0.12, top=0.91)
    shown = 0
    for label, share, colour in MAP_CLASSES:
        top = max(1, math.ceil(share * n))
        if top <= shown:
            continue  # a short list: this class is empty
        rows = placed[(placed["rank"] > shown) & (placed["rank"] <= top)]
        ranks = f"rank {top}" if top == shown + 1 else f"ranks {shown + 1}–{top}"
        if len(rows):
            ax.scatter(rows["longitude"], rows["latitude"], s=36, c=colour,
                       label=f"{label} ({ranks})", edgecolors="white", linewidths=0.5,
                       zorder=3 if share < 1 else 2)
        shown = top
    for zone, group in placed.groupby("zone"):
        ax.annotate(str(zone), (group["longitude"].mean(), group["latitude"].mean()),
                    fontsize=7, ha="center", va="bottom", color="#333333", alpha=0.8,
                    xytext=(0, 6), textcoords="offset points", zorder=1)
    left_off = n - len(placed)
    ax.set_title(title + (f" ({left_off} without coordinates not shown)" if left_off else ""),
                 fontsize=9)
    ax.set_xlabel("longitude", fontsize=8)
    ax.set_ylabel("latitude", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.locator_params(axis="x", nbins=5)
    ax.set_aspect(1 / max(math.cos(math.radians(float(placed["latitude"].mean()))), 0.1)
                  if len(placed) else "auto", adjustable="datalim")
    if len(placed):
        # outside the axes: "best" placement tests every point and costs more than the plot
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), title="priority",
                  title_fontsize=7, frameon=False)
    return _png(fig, tight=False)
