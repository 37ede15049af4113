"""The environment switches that keep Gradio and the Hugging Face libraries offline and quiet.

Set by the entry points (the CLI's `main`, the page's `build_demo`) when they run, never at import."""

from __future__ import annotations

import os

OFFLINE_DEFAULTS = {
    "GRADIO_ANALYTICS_ENABLED": "False",
    "HF_HUB_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "TRANSFORMERS_OFFLINE": "1",
}


def set_offline_defaults() -> None:
    """Turn analytics, telemetry and hub downloads off unless the user chose otherwise."""
    for key, value in OFFLINE_DEFAULTS.items():
        os.environ.setdefault(key, value)
