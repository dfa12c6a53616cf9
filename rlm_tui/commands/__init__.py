"""The subcommands of `rlm-tui`, one module per command or small family; each imports what it uses when it runs."""
