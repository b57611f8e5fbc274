"""What the parent logs about a configuration it has read, at start and at each reload:
keepalived's `Opening file '...'.` (with -D) and `Configuration file ...` lines, then each
diagnostic at its level (a RESET as a warning, as keepalived)."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from conf import LoadResult

log = logging.getLogger("pykeepalived")


def configuration(path: str, files: Sequence[str], detail: bool) -> list[str]:
    """keepalived: `Opening file 'F'.` per file read (with -D), then `Configuration file PATH`."""
    opened = [f"Opening file '{f}'." for f in files] if detail else []
    return [*opened, f"Configuration file {path}"]


def log_loaded(result: LoadResult, path: str, detail: bool) -> list[str]:
    """Log what keepalived logs of a configuration read; return the errors' texts."""
    for line in configuration(path, result.files, detail):
        log.info("%s", line)
    errors: list[str] = []
    for d in result.diagnostics.items:
        text = d.render(test_mode=False)
        label = d.label(test_mode=False)
        if label == "error":
            errors.append(text)
            log.error("%s", text)
        elif label == "warning":
            log.warning("%s", text)
        else:
            log.info("%s", text)
    return errors


def failure(errors: Sequence[str], path: str) -> str:
    """A failed reload in one line: the first error, and how many more."""
    first = errors[0] if errors else f"cannot read {path}"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{first}{more}"
