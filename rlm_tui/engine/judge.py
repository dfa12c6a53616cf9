"""The judge the engine lends environments' scorers: one chat completion on an OpenAI-compatible endpoint."""

from __future__ import annotations

import os


async def ask_judge(model: str, prompt: str, *, base_url: str | None = None) -> str:
    """`rlm_tui.env.Judge`: at `base_url`, else OPENAI_BASE_URL, with OPENAI_API_KEY; a failure raises ModelError."""
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
