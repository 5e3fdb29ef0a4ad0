"""Small PNG plots for asset metadata (matplotlib, no display needed)."""

from __future__ import annotations

import io
from collections.abc import Sequence



def _pyplot():
    """matplotlib's pyplot with the file-only backend, imported at the first plot: every process
    that loads the graph (each run's, the sensors') would otherwise pay for it at start."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig) -> bytes:
    plt = _pyplot()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
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
