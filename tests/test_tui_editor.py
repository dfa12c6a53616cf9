"""The code editors of the approve and inspect dialogs go to the start and end of their text."""

from __future__ import annotations

from textual.app import App, ComposeResult

from rlm_tui.tui.widgets.editor import Editor


class EditorApp(App):
    def compose(self) -> ComposeResult:
        yield Editor.code_editor("a = 1\nb = 2\nprint(a + b)", language="python")


async def test_ctrl_end_and_ctrl_home_go_to_the_end_and_the_start_of_the_text():
    app = EditorApp()
    async with app.run_test() as pilot:
        editor = app.query_one(Editor)
        editor.focus()
        await pilot.press("down", "ctrl+end", "x")
        assert editor.text == "a = 1\nb = 2\nprint(a + b)x"
        await pilot.press("ctrl+home", "y")
        assert editor.text == "ya = 1\nb = 2\nprint(a + b)x"
