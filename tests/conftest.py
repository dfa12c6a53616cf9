"""Fixtures shared by the sandbox tests."""

import pytest

from rlm_tui.sandbox import Sandbox


@pytest.fixture
async def make():
    """Start sandboxes with small timeouts (2 s a cell unless told); all are closed after the test."""
    boxes = []

    async def make(context="the context", answer=None, **kw):
        kw.setdefault("timeout", 2.0)
        kw.setdefault("interrupt_grace", 0.5)
        box = Sandbox(**kw)
        boxes.append(box)
        await box.start(context=context, answer=answer)
        return box

    yield make
    for box in boxes:
        await box.close()
