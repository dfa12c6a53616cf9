"""The app's screens: runs, run, rollout, and the modals over them."""
