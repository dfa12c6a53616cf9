"""Widgets that render folded state; none of them fetch it."""
