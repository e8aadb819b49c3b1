"""Progress for a person on stderr: one line rewritten in place on a terminal, plain lines else.

stdout stays for what a script reads (pages, JSON); a log or a pipe gets whole lines, never
carriage returns or spinner frames.
"""

from __future__ import annotations

import sys
from typing import TextIO

SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"


class StatusLine:
    """A status line on stderr (or `stream`)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self._shown = False

    def show(self, text: str) -> None:
        """Replace the line on a terminal; elsewhere, write it as a line of its own."""
        if self.tty:
            self.stream.write(f"\r\x1b[2K{text}")
            self._shown = True
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def spin(self, frame: int, text: str) -> None:
        """A spinner frame before the text, on a terminal only (a pipe would fill with frames)."""
        if self.tty:
            self.show(f"{SPINNER[frame % len(SPINNER)]} {text}")

    def end(self, text: str | None = None) -> None:
        """Finish: clear the rewritten line, then write `text` as a line, if given."""
        if self.tty and self._shown:
            self.stream.write("\r\x1b[2K")
            self._shown = False
        if text is not None:
            self.stream.write(text + "\n")
        self.stream.flush()
