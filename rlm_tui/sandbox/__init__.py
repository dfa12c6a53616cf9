"""A persistent Python REPL in an nsjail sandbox, one per rollout."""

from rlm_tui.sandbox.jail import Limits, SandboxError
from rlm_tui.sandbox.session import CellResult, Sandbox

__all__ = ["CellResult", "Limits", "Sandbox", "SandboxError"]
