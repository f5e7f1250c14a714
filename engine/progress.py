"""The progress stream of DESIGN.md: one JSON object per line on stdout."""

import json
import sys
from typing import IO, Any


class Progress:
    """Writes progress events as JSON lines when enabled; silent otherwise."""

    def __init__(self, enabled: bool, stream: IO[str] | None = None):
        self.enabled = enabled
        self.stream = stream or sys.stdout

    def emit(self, event: str, **fields: Any) -> None:
        if not self.enabled:
            return
        self.stream.write(json.dumps({"event": event, **fields}) + "\n")
        self.stream.flush()

    def stage(self, name: str) -> None:
        self.emit("stage", name=name)

    def step(self, stage: str, step: int, steps: int, loss: dict[str, float]) -> None:
        self.emit("progress", stage=stage, step=step, steps=steps,
                  loss={k: round(float(v), 6) for k, v in loss.items()})
