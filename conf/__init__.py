"""keepalived.conf parsing: `load()` returns the typed, immutable model and diagnostics."""

from conf.diagnostics import Diagnostic, Diagnostics, Location, Severity
from conf.loader import DEFAULT_CONFIG, LoadResult, load

__all__ = ["DEFAULT_CONFIG", "Diagnostic", "Diagnostics", "LoadResult", "Location", "Severity", "load"]
