"""What the app's refresh loop redraws: a screen of the session, once it is composed and mounted."""

from __future__ import annotations


class SessionView:
    """A view of the session; the app's refresh loop calls `refresh_view` once `ready` is set."""

    ready = False

    def refresh_view(self) -> None:
        pass
