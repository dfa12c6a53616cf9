"""Which parts of a new text are not in the old one: a patience diff over words, near linear in the text's size."""

from __future__ import annotations

import re
from bisect import bisect_left
from collections import Counter
from itertools import accumulate

_TOKEN = re.compile(r"\S+\s*|\s+")  # a word with the blanks after it; the tokens joined give the text back
MAX_DEPTH = 8  # gaps left after this many rounds of anchoring are marked whole


def _common_prefix(a: str, b: str) -> int:
    """Length of the common prefix, by halving with slice compares (done in C)."""
    lo, hi = 0, min(len(a), len(b))
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if a[lo:mid] == b[lo:mid]:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _common_suffix(a: str, b: str, limit: int) -> int:
    lo, hi = 0, min(len(a), len(b), limit)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if a[len(a) - mid : len(a) - lo] == b[len(b) - mid : len(b) - lo]:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _anchors(a: list[str], b: list[str]) -> list[tuple[int, int]]:
    """Pairs (i, j) of tokens found once in each, the longest run of them in the same order in both."""
    count_a, count_b = Counter(a), Counter(b)
    where = {t: j for j, t in enumerate(b) if count_b[t] == 1}
    pairs = [(i, where[t]) for i, t in enumerate(a) if count_a[t] == 1 and t in where]
    # longest increasing subsequence of j, by patience sorting
    tails: list[int] = []  # j of the last pair of the best run of each length
    tail_at: list[int] = []  # index into pairs of that last pair
    back = [-1] * len(pairs)
    for k, (_, j) in enumerate(pairs):
        n = bisect_left(tails, j)
        if n == len(tails):
            tails.append(j)
            tail_at.append(k)
        else:
            tails[n], tail_at[n] = j, k
        back[k] = tail_at[n - 1] if n else -1
    run = []
    k = tail_at[-1] if tail_at else -1
    while k >= 0:
        run.append(pairs[k])
        k = back[k]
    return run[::-1]


def _matches(a: list[str], b: list[str], a0: int, a1: int, b0: int, b1: int, depth: int, out: list) -> None:
    """Append to `out` the (i, j, n) runs of equal tokens of a[a0:a1] and b[b0:b1], in order."""
    while a0 < a1 and b0 < b1 and a[a0] == b[b0]:  # the gap's own common head and tail
        out.append((a0, b0, 1))
        a0, b0 = a0 + 1, b0 + 1
    tail = []
    while a1 > a0 and b1 > b0 and a[a1 - 1] == b[b1 - 1]:
        a1, b1 = a1 - 1, b1 - 1
        tail.append((a1, b1, 1))
    if a0 < a1 and b0 < b1 and depth < MAX_DEPTH:
        i, j = a0, b0
        for ai, bj in _anchors(a[a0:a1], b[b0:b1]):
            ai, bj = ai + a0, bj + b0
            if ai < i or bj < j:
                continue  # already covered by the previous anchor's run
            _matches(a, b, i, ai, j, bj, depth + 1, out)
            n = 1
            while ai + n < a1 and bj + n < b1 and a[ai + n] == b[bj + n]:
                n += 1
            out.append((ai, bj, n))
            i, j = ai + n, bj + n
        if (i, j) != (a0, b0):
            _matches(a, b, i, a1, j, b1, depth + 1, out)
    out.extend(reversed(tail))


def changed_middle(old: str, new: str) -> list[tuple[int, int]]:
    """The one range of `new` between what it shares with `old` at the start and at the end: for texts too long
    to diff word by word."""
    head = _common_prefix(old, new)
    tail = _common_suffix(old, new, min(len(old), len(new)) - head)
    return [(head, len(new) - tail)] if head < len(new) - tail else []


def changed_spans(old: str, new: str) -> list[tuple[int, int]]:
    """Ranges of `new`, in order and apart, that are not in `old`: whole words, trimmed to what differs."""
    head = _common_prefix(old, new)
    tail = _common_suffix(old, new, min(len(old), len(new)) - head)
    old_mid, new_mid = old[head : len(old) - tail], new[head : len(new) - tail]
    if not new_mid:
        return []
    if not old_mid:
        return [(head, head + len(new_mid))]
    a, b = _TOKEN.findall(old_mid), _TOKEN.findall(new_mid)
    starts_a, starts_b = _offsets(a, head), _offsets(b, head)
    runs: list[tuple[int, int, int]] = []
    _matches(a, b, 0, len(a), 0, len(b), 0, runs)
    spans: list[tuple[int, int]] = []
    i = j = 0
    for ri, rj, n in [*runs, (len(a), len(b), 0)]:
        if rj > j:  # b[j:rj] replaces a[i:ri]: only the characters that differ are marked
            was, now = old[starts_a[i] : starts_a[ri]], new[starts_b[j] : starts_b[rj]]
            lead = _common_prefix(was, now)
            trail = _common_suffix(was, now, min(len(was), len(now)) - lead)
            start, end = starts_b[j] + lead, starts_b[rj] - trail
            if start < end:
                if spans and spans[-1][1] == start:
                    spans[-1] = (spans[-1][0], end)
                else:
                    spans.append((start, end))
        i, j = ri + n, rj + n
    return spans


def _offsets(tokens: list[str], start: int) -> list[int]:
    """Where each token starts in the text, and where the last one ends."""
    return list(accumulate(map(len, tokens), initial=start))
