"""Where the engine keeps its downloaded and converted assets."""

import os
from pathlib import Path


def ganfit_home() -> Path:
    """The asset cache: `$GANFIT_HOME`, default `~/.cache/ganfit`."""
    env = os.environ.get("GANFIT_HOME")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "ganfit"
