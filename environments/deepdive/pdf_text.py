"""A PDF's text, read by pypdf in a child process with memory, CPU and time limits: a hostile PDF costs one tool call."""

from __future__ import annotations

import asyncio
import json
import signal
import sys

MAX_PAGES = 50  # pages read at most; the text says how many the PDF has
MAX_CHARS = 40_000  # stop reading pages past this much text (twice what `open` shows)
MEMORY_BYTES = 1 << 30  # the child's address space
CPU_SECONDS = 20
WALL_SECONDS = 30.0
MAX_REPLY_BYTES = 1 << 20  # the child's ASCII JSON: its text is cut to MAX_CHARS + 1000, at most 12 bytes a char


class PdfError(Exception):
    """A PDF that could not be read; the message is one line."""


async def pdf_text(data: bytes) -> tuple[str, str]:
    """(title, text) of the PDF in `data`; raises PdfError on a broken, hostile or unreadable PDF."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-P",  # not this folder on sys.path: its modules' names must not shadow what pypdf imports
        __file__,
        str(MEMORY_BYTES),
        str(CPU_SECONDS),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        async with asyncio.timeout(WALL_SECONDS):
            out, _ = await proc.communicate(data)
    except TimeoutError:
        raise PdfError(f"reading it took longer than {WALL_SECONDS:g} s") from None
    finally:
        if proc.returncode is None:  # timed out or cancelled: the child must not outlive the call
            proc.kill()
            await proc.wait()
    try:
        reply = json.loads(out) if len(out) <= MAX_REPLY_BYTES else None
    except ValueError:
        reply = None
    if not isinstance(reply, dict):
        if proc.returncode == -signal.SIGXCPU:
            raise PdfError(f"reading it took more than {CPU_SECONDS} s of CPU")
        raise PdfError(f"the reader stopped with exit status {proc.returncode}")
    if "error" in reply:
        raise PdfError(" ".join(str(reply["error"]).split())[:300])
    return str(reply.get("title") or ""), str(reply.get("text") or "")


def read(data: bytes) -> dict[str, str]:
    """In the child: the first pages' text, headed by how much of the PDF it is."""
    import io

    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(data), strict=False)
    total = len(reader.pages)
    texts: list[str] = []
    for page in reader.pages[:MAX_PAGES]:
        texts.append((page.extract_text() or "").strip())
        if sum(map(len, texts)) >= MAX_CHARS:
            break
    try:
        title = reader.metadata.title if reader.metadata and isinstance(reader.metadata.title, str) else ""
    except Exception:  # a broken info dictionary costs the title, not the text
        title = ""
    head = f"[PDF, {total:,} page{'s' if total != 1 else ''}"
    head += f"; text of pages 1-{len(texts)}]" if len(texts) < total else "]"
    return {"title": title.strip()[:500], "text": "\n\n".join([head, *filter(None, texts)])[: MAX_CHARS + 1000]}


def main() -> None:
    import resource

    memory, cpu = int(sys.argv[1]), int(sys.argv[2])
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))  # SIGXCPU at the soft limit, SIGKILL a second on
    try:
        reply = read(sys.stdin.buffer.read())
    except ImportError:
        reply = {"error": "reading PDFs needs pypdf: pip install pypdf"}
    except MemoryError:
        reply = {"error": f"it needs more than {memory >> 20:,} MB to read"}
    except Exception as exc:  # pypdf's errors on a broken file are of many kinds; each is this call's only
        reply = {"error": f"{type(exc).__name__}: {exc}"}
    sys.stdout.buffer.write(json.dumps(reply).encode())  # ASCII whatever the locale


if __name__ == "__main__":
    main()
