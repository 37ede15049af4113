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
    from sklearn.metrics import ConfusionMatrixDisplay

    labels = report["labels"]
    size = max(5.0, 0.45 * len(labels) + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    display = ConfusionMatrixDisplay(np.array(report["confusion_matrix"]), display_labels=labels)
    display.plot(ax=ax, cmap="Blues", colorbar=False, xticks_rotation=60, values_format="d")
    for text in display.text_.ravel():
        text.set_fontsize(7)
        if text.get_text() == "0":
            text.set_text("")
    ax.set_xlabel("predicted")
    ax.set_ylabel("gold")
    ax.set_title(title)
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
