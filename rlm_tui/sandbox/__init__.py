"""A persistent Python REPL in an nsjail sandbox, one per rollout."""

from rlm_tui.sandbox.jail import Limits, SandboxError
from rlm_tui.sandbox.session import MAX_ANSWER_CHARS, CellResult, CpuBudgetSpent, Sandbox

__all__ = ["MAX_ANSWER_CHARS", "CellResult", "CpuBudgetSpent", "Limits", "Sandbox", "SandboxError"]
