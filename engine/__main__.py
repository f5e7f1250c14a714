"""`python -m engine`: the engine's entry, made safe for any caller's environment first.

The engine is headless by design and never needs a display. With DISPLAY (or
WAYLAND_DISPLAY) set, as in every desktop session and in Blender, MediaPipe loads Mesa's
GL/LLVM, and torch's compiler stack (triton, imported by torch.optim) then segfaults
(exit 139). Removing the variables before anything can import MediaPipe stops GL from
loading at all, whatever the libraries' import order, and needs no heavy import up
front; importing torch._dynamo first would only reorder the two libraries and still
leave Mesa in the process. os.environ changes reach the C-level environment, which is
what native libraries read.

faulthandler is on so that a crash in native code still leaves the engine's own last
words on stderr ("Fatal Python error: Segmentation fault" and the Python stack), which
the add-on shows instead of whatever a library logged last.
"""

import faulthandler
import os
import sys

HEADLESS_UNSET = ("DISPLAY", "WAYLAND_DISPLAY")

for _name in HEADLESS_UNSET:
    os.environ.pop(_name, None)
faulthandler.enable(all_threads=False)

from engine.cli import main  # noqa: E402  (after the environment is made headless)

sys.exit(main())
