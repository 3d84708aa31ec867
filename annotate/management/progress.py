"""The progress bar of the commands that run a long job in the foreground
(train_reward_model, generate_responses): one redrawn line on a terminal; elsewhere (logs,
pipes) a line every tenth of the job."""

from __future__ import annotations

from typing import Any

BAR_WIDTH = 30


class ProgressBar:
    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.tty = bool(getattr(stream, "isatty", lambda: False)())
        self.last_tenth = -1
        self.drawn = False

    def restart(self) -> None:
        """The job grew (a refit's steps): the next tenths are printed again."""
        self.last_tenth = -1

    def show(self, done: float, text: str) -> None:
        """Draw `text` behind a bar `done` (0 to 1) full."""
        filled = int(done * BAR_WIDTH)
        line = f"[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {text}"
        if self.tty:
            self.stream.write(f"\r{line}", ending="")
            self.stream.flush()
            self.drawn = True
        elif int(done * 10) > self.last_tenth:
            self.last_tenth = int(done * 10)
            self.stream.write(line)

    def close(self) -> None:
        if self.drawn:
            self.stream.write("")
