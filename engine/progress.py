"""The progress stream of DESIGN.md: one JSON object per line on stdout."""

import json
import os
import sys
from typing import IO, Any

from engine.errors import Cancelled


class Progress:
    """Writes progress events as JSON lines when enabled; silent otherwise.

    When the reader closes the stream (the add-on went away, `... | head -1`), the next
    event raises Cancelled once and the stream is switched off (stdout then goes to the
    null device, so Python's final flush cannot fail either).
    """

    def __init__(self, enabled: bool, stream: IO[str] | None = None):
        self.enabled = enabled
        self.stream = stream or sys.stdout

    def emit(self, event: str, **fields: Any) -> None:
        if not self.enabled:
            return
        try:
            self.stream.write(json.dumps({"event": event, **fields}) + "\n")
            self.stream.flush()
        except (BrokenPipeError, ValueError) as error:  # ValueError: stream already closed
            self.enabled = False
            silence(self.stream)
            raise Cancelled("cancelled: the progress stream (stdout) was closed by its reader") \
                from error

    def stage(self, name: str) -> None:
        self.emit("stage", name=name)

    def step(self, stage: str, step: int, steps: int, loss: dict[str, float]) -> None:
        self.emit("progress", stage=stage, step=step, steps=steps,
                  loss={k: round(float(v), 6) for k, v in loss.items()})


def silence(stream: IO[str]) -> None:
    """Point the stream's file descriptor at the null device, dropping what is buffered."""
    try:
        fd = stream.fileno()
    except (OSError, ValueError):
        return
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, fd)
    os.close(null)
