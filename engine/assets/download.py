"""Downloading an archive into the cache without ever leaving a half-written file."""

import http.client
import os
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from engine.errors import MissingAssetError


def download(url: str, dest_dir: Path, log: Callable[[str], None] = print) -> Path:
    """Stream `url` into a new temporary file in `dest_dir` and return its path.

    A short read (the server's Content-Length not reached) or a network error raises
    MissingAssetError and removes the partial file. The caller verifies the content.
    """
    dest_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".download-", dir=dest_dir)
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=60) as response:
            expected = int(response.headers.get("Content-Length") or -1)
            received = 0
            next_report = 0
            while chunk := response.read(1 << 20):
                out.write(chunk)
                received += len(chunk)
                if received >= next_report:
                    log(f"downloaded {received / 1e6:.0f} MB")
                    next_report += 50_000_000
        if expected >= 0 and received != expected:
            raise MissingAssetError(
                f"download of {url} was cut short ({received} of {expected} bytes); run the "
                "same command again"
            )
    except (urllib.error.URLError, http.client.HTTPException, OSError, TimeoutError) as error:
        Path(tmp).unlink(missing_ok=True)
        raise MissingAssetError(f"could not download {url}: {error}") from error
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Path(tmp)
