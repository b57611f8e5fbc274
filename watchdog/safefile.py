"""Writing a file as root without being tricked into writing somewhere else.

The daemon writes its dumps (SIGUSR1/SIGUSR2/SIGRTMIN+2) into $TMPDIR, usually /tmp,
where anyone can plant a symlink or a file in advance. A predictable temporary name
(`NAME.PID.tmp`) opened with open("w") follows such a symlink and truncates its target
(keepalived's CVE-2018-19044/19045/19046). Here:

- the temporary file has a random name in the destination directory, created with
  O_CREAT|O_EXCL|O_NOFOLLOW and mode 0600 (tempfile.mkstemp: it never opens anything that
  already exists, a symlink included, and retries on a clash);
- os.replace() then renames it onto the final name: rename(2) replaces a symlink or a file
  planted there instead of following it, and a reader never sees a half-written file.
"""

from __future__ import annotations

import contextlib
import os

FILE_MODE = 0o600


def write_atomic(path: str, data: str | bytes, mode: int = FILE_MODE, *, fsync: bool = False) -> None:
    """Replace `path` with a new regular file holding `data` (str as UTF-8), mode `mode`
    exactly (whatever the umask). fsync: make it durable before the rename (dumps do not
    need that). Raises OSError; no temporary file is left behind then."""
    directory, name = os.path.split(path)
    body = data.encode("utf-8") if isinstance(data, str) else data
    import tempfile  # noqa: PLC0415 (dumps are rare; with shutil and random, 0.4 MB otherwise held)

    # The prefix keeps a leftover (power cut) recognisable; the random part is mkstemp's.
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=directory or ".")
    try:
        with os.fdopen(fd, "wb") as f:
            # mkstemp's 0600 is filtered by the umask; set what was asked for exactly.
            os.fchmod(f.fileno(), mode)
            f.write(body)
            if fsync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
