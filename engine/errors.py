"""Errors the engine reports to its caller, each with its documented exit code.

Exit codes (DESIGN.md): 2 bad usage or unreadable input, 3 no face, 4 missing asset,
5 anything else. The `code` string is what the progress stream's error event carries.
"""


class EngineError(Exception):
    """Base class: a failure with a user-facing one-line message."""

    exit_code = 5
    code = "INTERNAL"


class BadInputError(EngineError):
    """Bad usage, or an input file that is missing, unreadable or not an image."""

    exit_code = 2
    code = "BAD_IMAGE"


class NoFaceError(EngineError):
    """No face was found in a photo."""

    exit_code = 3
    code = "NO_FACE"


class MissingAssetError(EngineError):
    """A required asset is not installed or is damaged; the message names the fix."""

    exit_code = 4
    code = "MISSING_ASSET"


class Cancelled(BaseException):
    """The run was stopped from outside: SIGINT, SIGTERM or SIGHUP, or the reader of the
    progress stream closed it. A BaseException like KeyboardInterrupt, so no `except
    Exception` on the way swallows it; the CLI reports it as exit 5 "cancelled"."""

    exit_code = 5
    code = "INTERNAL"
