"""Owner-only files on every platform.

On POSIX a file is made readable and writable by its owner only (mode 0600). Windows has no such mode bits
(``os.chmod`` only sets or clears the read-only flag), so nothing is changed there: the file keeps the access
list it inherits from its folder, which for a folder inside the user's profile is that user (plus
administrators). Keep the configuration folder there on Windows.
"""

from __future__ import annotations

import os
from pathlib import Path

OWNER_ONLY = 0o600


def restrict_to_owner(path: str | Path) -> None:
    if os.name == "posix":
        os.chmod(path, OWNER_ONLY)
