"""The judge the engine lends environments' scorers: one chat completion on an OpenAI-compatible endpoint."""

from __future__ import annotations

import os


async def ask_judge(model: str, prompt: str, *, base_url: str | None = None) -> str:
    """The reply at `base_url`, else OPENAI_BASE_URL, with OPENAI_API_KEY; a failure raises ModelError."""
    from rlm_tui.engine.wire import WireClient  # aiohttp only once a scorer asks a judge

    client = WireClient(
        base_url=base_url or os.environ.get("OPENAI_BASE_URL") or None,
        api_key=os.environ.get("OPENAI_API_KEY"),
        max_retries=2,
    )
    try:
        reply = await client.complete(model, [{"role": "user", "content": prompt}], None)
    finally:
        await client.close()
    return reply.text


class RunJudge:
    """`rlm_tui.env.Judge` for one run: by default its sub model at its endpoint; no model when the run is offline."""

    def __init__(self, sub_model: str, base_url: str | None = None) -> None:
        self.model: str | None = None if sub_model == "scripted" else sub_model
        self.base_url = base_url

    async def __call__(self, model: str, prompt: str, *, base_url: str | None = None) -> str:
        return await ask_judge(model, prompt, base_url=base_url or self.base_url)
