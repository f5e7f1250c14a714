"""Installing an asset folder in the cache: written whole in a temporary sibling, then put
in place in one step (the same atomic rename the result folder uses, engine.publish), so a
failure or a kill never leaves a half-written asset and an older install stays usable
until the new one is complete."""

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from engine.publish import DestinationTaken, rename_noreplace, replace_folder


def install_folder(final: Path, write: Callable[[Path], None]) -> Path:
    """Run write(tmp) on a new temporary folder beside `final`, then make it `final`
    (replacing an existing install only once the new one is whole). Returns `final`."""
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}-", dir=final.parent))
    try:
        write(tmp)
        tmp.chmod(0o755)
        try:
            rename_noreplace(tmp, final)
        except DestinationTaken:
            replace_folder(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final
