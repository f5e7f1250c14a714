"""The fitting engine: photo(s) in, a fitted face model and texture out.

Runs in its own process (`python -m engine ...`); see engine.cli for the commands.
"""

__version__ = "0.1.0"
