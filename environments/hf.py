"""Loading a Hugging Face dataset for an environment's online source: one line on failure, no retry chatter."""

from __future__ import annotations

import logging
import os
import urllib.error
import urllib.request
from typing import Any

from rlm_tui.env import EnvError

HUB = "https://huggingface.co"
HUB_PROBE_SECONDS = 5.0  # an unreachable hub otherwise costs a minute of the libraries' own retries before it fails


def check_hub_reachable() -> None:
    """EnvError in seconds when the hub cannot be reached at all; any HTTP answer, even an error, is reachable."""
    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("", "0") or os.environ.get("HF_DATASETS_OFFLINE", "0") not in (
        "",
        "0",
    ):
        return  # the cache alone is asked
    endpoint = (os.environ.get("HF_ENDPOINT") or HUB).rstrip("/")
    try:
        urllib.request.urlopen(urllib.request.Request(endpoint, method="HEAD"), timeout=HUB_PROBE_SECONDS).close()
    except urllib.error.HTTPError:
        return
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise EnvError(
            f"cannot reach the Hugging Face hub at {endpoint} within {HUB_PROBE_SECONDS:g} s ({reason}); "
            "check the network, or set HF_HUB_OFFLINE=1 to use a copy already in the cache"
        ) from None


def load_dataset(name: str, *args: Any, **kwargs: Any) -> Any:
    """`datasets.load_dataset(name, ...)`; a missing package or a failed download is one EnvError line."""
    try:
        import datasets
    except ImportError:
        raise EnvError(f"loading {name} needs the `datasets` package: pip install 'rlm-tui[online]'") from None
    for logger in ("huggingface_hub", "datasets", "fsspec"):
        logging.getLogger(logger).setLevel(logging.ERROR)  # their retry warnings would bury the one-line error
    check_hub_reachable()
    try:
        return datasets.load_dataset(name, *args, **kwargs)
    except Exception as exc:  # no network, no such dataset, a changed schema: one line either way
        what = " ".join([name, *map(str, args)]) + (f" ({kwargs['split']})" if kwargs.get("split") else "")
        reason = (str(exc).strip().splitlines() or [""])[0][:300]
        raise EnvError(f"could not load {what}: {type(exc).__name__}: {reason}") from None
