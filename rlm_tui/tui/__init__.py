"""The Textual app: runs, run and rollout views over events folded by the reducer."""
