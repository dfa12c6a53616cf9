"""Loading a Hugging Face dataset for an environment's online source: one line on failure, no retry chatter."""

from __future__ import annotations

import logging
from typing import Any

from rlm_tui.env import EnvError


def load_dataset(name: str, *args: Any, **kwargs: Any) -> Any:
    """`datasets.load_dataset(name, ...)`; a missing package or a failed download is one EnvError line."""
    try:
        import datasets
    except ImportError:
        raise EnvError(f"loading {name} needs the `datasets` package: pip install 'rlm-tui[online]'") from None
    for logger in ("huggingface_hub", "datasets", "fsspec"):
        logging.getLogger(logger).setLevel(logging.ERROR)  # their retry warnings would bury the one-line error
    try:
        return datasets.load_dataset(name, *args, **kwargs)
    except Exception as exc:  # no network, no such dataset, a changed schema: one line either way
        what = " ".join([name, *map(str, args)]) + (f" ({kwargs['split']})" if kwargs.get("split") else "")
        reason = (str(exc).strip().splitlines() or [""])[0][:300]
        raise EnvError(f"could not load {what}: {type(exc).__name__}: {reason}") from None
