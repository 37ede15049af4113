"""Writing an evaluation report: JSON and a confusion-matrix picture."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def plot_confusion(report: dict[str, Any], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    labels = report["labels"]
    matrix = np.array(report["confusion_matrix"])
    size = max(5.0, 0.45 * len(labels) + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("gold")
    ax.set_title(title)
    top = matrix.max() if matrix.size else 0
    for i in range(len(labels)):
        for j in range(len(labels)):
            if matrix[i, j]:
                ax.text(j, i, str(matrix[i, j]), ha="center", va="center", fontsize=7,
                        color="white" if matrix[i, j] > top / 2 else "black")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(report: dict[str, Any], out_dir: Path) -> dict[str, Path]:
    """report.json plus confusion.png (event types) and stance_confusion.png when present."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"json": out_dir / "report.json", "png": out_dir / "confusion.png"}
    paths["json"].write_text(json.dumps(report, indent=1), encoding="utf-8")
    if "event_type" in report:
        plot_confusion(report["event_type"], paths["png"], "event type: gold vs predicted")
    if "stance" in report:
        paths["stance_png"] = out_dir / "stance_confusion.png"
        plot_confusion(report["stance"], paths["stance_png"], "stance (gold actor spans)")
    return paths
