"""The pure reducer: fold events into RunState / RolloutState; no I/O."""

from rlm_tui.state.records import Cell, Proposal, SubBatch, SubCall, Turn
from rlm_tui.state.rollout import RolloutState
from rlm_tui.state.run import RunState, fold, operator_by_turn

__all__ = [
    "Cell",
    "Proposal",
    "RolloutState",
    "RunState",
    "SubBatch",
    "SubCall",
    "Turn",
    "fold",
    "operator_by_turn",
]
