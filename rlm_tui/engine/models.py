"""The models a run asks for, checked to go together, and the client that serves them."""

from __future__ import annotations

import os
import sys
from typing import Any

from rlm_tui.env import http_url

OPENAI_URL = "https://api.openai.com/v1"
DEFAULT_MODEL = "gpt-5-mini"  # with OPENAI_API_KEY set; without it, the offline scripted model


class ModelSetupError(Exception):
    """A model, key or endpoint that cannot serve the run as asked; the message is one line."""


def resolve_models(model: str | None, sub_model: str | None, base_url: str | None) -> tuple[str, str, str | None]:
    """The root model, the sub-LLM model and the base URL a run asks for, defaults filled in."""
    if not model:
        model = DEFAULT_MODEL if os.environ.get("OPENAI_API_KEY") else "scripted"
        if model == "scripted":
            print("rlm-tui: OPENAI_API_KEY is not set; using the offline scripted model", file=sys.stderr)
    sub_model = sub_model or model
    if (model == "scripted") != (sub_model == "scripted"):
        raise ModelSetupError("the scripted model plays both root and sub-LLMs; use it for both or for neither")
    return model, sub_model, base_url or env_base_url()


def env_base_url() -> str | None:
    """$OPENAI_BASE_URL, checked; empty counts as unset, as the OpenAI tools treat it."""
    raw = os.environ.get("OPENAI_BASE_URL") or None
    try:
        return raw and http_url(raw)
    except ValueError as exc:
        raise ModelSetupError(f"OPENAI_BASE_URL: {exc}") from None


def make_client(
    env: Any,
    model: str,
    base_url: str | None,
    scripted_delay: float = 0.0,
    request_timeout: float = 120.0,
    simulation: Any = None,
) -> Any:
    """The scripted model (slipping as `simulation` says), or an OpenAI-compatible client after checking its key and
    that the server answers."""
    if model == "scripted":
        from rlm_tui.engine.scripted import ScriptedClient

        return ScriptedClient(env, delay=scripted_delay, simulation=simulation)
    from rlm_tui.engine.clients import OpenAIClient  # the SDK, imported only for a real model: most of a second

    key = os.environ.get("OPENAI_API_KEY")
    if not key and not base_url:
        raise ModelSetupError(
            f"model {model!r} needs OPENAI_API_KEY (or --base-url for a local server); "
            "use --model scripted to run offline"
        )
    base_url = base_url or OPENAI_URL  # explicit, so that the SDK never reads an empty $OPENAI_BASE_URL itself
    check_reachable(base_url)
    return OpenAIClient(base_url=base_url, api_key=key, request_timeout=request_timeout)


def check_reachable(base_url: str) -> None:
    import httpx

    try:
        httpx.get(base_url.rstrip("/") + "/models", timeout=10)
    except httpx.HTTPError as exc:
        raise ModelSetupError(
            f"cannot reach {base_url} ({type(exc).__name__}); check --base-url and the network"
        ) from None
