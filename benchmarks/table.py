"""One row per figure, beside its floor measured in the same run: printed at once, and gathered by run.py."""

from __future__ import annotations

import json
import os

ROWS_FILE = "RLM_TUI_BENCH_ROWS"  # run.py names a file here; each row is appended to it as one JSON line


def row(
    measure: str,
    value: float,
    unit: str,
    *,
    floor: float | None = None,
    floor_name: str = "",
    max_ratio: float | None = None,
    max_value: float | None = None,
    note: str = "",
) -> dict:
    """Print and record one figure; `met` holds when every target given (ratio to the floor, absolute) is met."""
    ratio = value / floor if floor else None
    checks = []
    if max_ratio is not None:
        checks.append(ratio is not None and ratio <= max_ratio)
    if max_value is not None:
        checks.append(value <= max_value)
    target = " and ".join(
        t for t in (f"<= {max_ratio:g}x" if max_ratio else "", f"<= {max_value:g} {unit}" if max_value else "") if t
    )
    record = {
        "measure": measure,
        "value": value,
        "unit": unit,
        "floor": floor,
        "floor_name": floor_name,
        "ratio": ratio,
        "target": target,
        "met": all(checks) if checks else None,
        "note": note,
    }
    print(format_row(record), flush=True)
    path = os.environ.get(ROWS_FILE)
    if path:
        with open(path, "a") as out:
            out.write(json.dumps(record) + "\n")
    return record


def format_row(r: dict) -> str:
    floor = f"{r['floor']:,.3f} {r['unit']} ({r['floor_name']})" if r["floor"] is not None else "-"
    ratio = f"{r['ratio']:.2f}x" if r["ratio"] is not None else "-"
    met = {True: "met", False: "NOT met", None: ""}[r["met"]]
    return f"{r['measure']:<60} {r['value']:>11,.3f} {r['unit']:<4} floor {floor:<44} ratio {ratio:>7}  target {r['target'] or '-'} {met}"
