"""The router tools' plots: one way to open and to finish a figure (matplotlib, Agg backend)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def new_axes() -> tuple[Any, Any]:
    """(figure, axes) for a 7 x 4.5 inch plot, without a display."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(7, 4.5))


def finish(fig: Any, ax: Any, path: Path, title: str, xlabel: str, ylabel: str, legend_at: str = "best") -> None:
    """Label, legend and grid the axes, then write `path` (folders created) and close the figure."""
    import matplotlib.pyplot as plt

    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8, loc=legend_at)
    ax.grid(alpha=0.3)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
