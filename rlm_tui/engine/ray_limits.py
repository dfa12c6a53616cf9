"""What `--executor ray` needs and cannot do yet, checked before a run starts (no Ray import: the command line
checks it too)."""

from __future__ import annotations

import socket
from typing import Any

from rlm_tui.engine.models import ModelSetupError

MAX_RETRIES = 10
PROBE_SECONDS = 5.0  # Ray itself waits for an unreachable head for minutes, saying nothing useful


class ClusterError(ModelSetupError):
    """The run cannot use the Ray cluster; the message is one line. Raised before the run starts, and reported
    as a model endpoint that cannot serve the run is: one line, exit 2 (`resume` and `fork` of a Ray run too)."""


def ray_refuses(config: Any) -> str | None:
    """Why `config` cannot run under `--executor ray`, in one line; None: it can."""
    if config.run_budget.any:  # each node sees only its own rollouts' spending
        return (
            "the run-wide budgets (--run-max-*) are not kept across the nodes of a Ray cluster yet; "
            "use the per-rollout ones (--max-usd and the others) or --executor local"
        )
    return None


def cluster_address(text: str) -> str:
    """A Ray address as `ray.init` takes it: auto, HOST:PORT or ray://HOST:PORT."""
    if text == "auto":
        return text
    host, _, port = text.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536 or any(c.isspace() for c in host):
        raise ValueError(f"a Ray address is HOST:PORT, ray://HOST:PORT or auto, not {text[:80]!r}")
    return text


def probe(address: str) -> None:
    """Fail fast, in one line, when nothing listens at a HOST:PORT address."""
    if address == "auto":
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=PROBE_SECONDS).close()
    except OSError as exc:
        raise ClusterError(f"cannot reach the Ray cluster at {address}: {exc.strerror or exc}") from None
