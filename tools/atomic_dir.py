"""A model directory written whole or not at all, shared by the exporters and the min-dalle converter."""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile


@contextlib.contextmanager
def atomic_directory(out: str):
    """Yields a new temporary directory beside ``out`` (whose parent must exist) to fill. When the block
    succeeds, the directory replaces ``out`` in one rename (an existing ``out`` is moved aside first and removed
    after) and is made readable by everyone; when the block raises, the temporary directory is removed and
    ``out`` is left as it was."""
    parent = os.path.dirname(out)
    tmp = tempfile.mkdtemp(prefix="." + os.path.basename(out) + ".tmp-", dir=parent)
    try:
        yield tmp
        os.chmod(tmp, 0o755)
        old = None
        if os.path.exists(out):
            old = tempfile.mkdtemp(prefix="." + os.path.basename(out) + ".old-", dir=parent)
            os.rename(out, os.path.join(old, "x"))
        os.rename(tmp, out)
        if old:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
