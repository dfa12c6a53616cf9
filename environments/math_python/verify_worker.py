"""The grading worker process: one JSON job a line on stdin, one JSON verdict a line on its private reply fd."""

from __future__ import annotations

import json
import logging
import os
import resource
import signal
import sys

ALARM_MARGIN = 5  # seconds past the host's limit: the host kills first, this only ends a worker whose host is gone


def main() -> None:
    memory = int(sys.argv[1])
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))  # a giant expression fails here, not on the host
    replies = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # anything the libraries print goes to stderr, never into the replies
    logging.disable(logging.WARNING)  # math-verify warns that its own (signal) limit is off: the host keeps time

    from math_verify import parse, verify

    replies.write('{"ready": true}\n')
    replies.flush()
    for line in sys.stdin:
        job = json.loads(line)
        # SIGALRM's default action ends the process even inside C code: no job outlives its limit by much, host or not
        signal.alarm(int(job["limit"]) + ALARM_MARGIN)
        try:
            gold = parse(f"\\boxed{{{job['gold']}}}", parsing_timeout=None)
            answer = parse(f"\\boxed{{{job['answer']}}}", parsing_timeout=None)
            reply: dict = {"correct": bool(verify(gold, answer, timeout_seconds=None))}
        except Exception as exc:  # the study scores any failure of math-verify as wrong
            reply = {"correct": False, "error": " ".join(f"{type(exc).__name__}: {exc}".split())[:200]}
        signal.alarm(0)
        replies.write(json.dumps(reply) + "\n")
        replies.flush()


if __name__ == "__main__":
    main()
