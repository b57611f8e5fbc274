"""Config diagnostics: what went wrong, where, and how bad it is.

keepalived logs most config problems and carries on with a default ("reset"); `-t`
still exits non-zero for them. We keep that distinction explicit: a RESET is an error
under `-t` and a warning when the daemon runs, and its message says what was used
instead.
"""

from __future__ import annotations

import enum
import itertools
from dataclasses import dataclass, field
from typing import Self


class Location(int):
    """A file and line, printed `FILE:LINE`. One is made for every config line and kept by
    the model (every block, VIP and keyword has one), so it is one int: the line in the
    low 32 bits, above them the file's number in a table of this process's file names
    (only grows by the distinct paths ever read). 56 bytes, where a (file, line) tuple
    and the line's int took 96; entries kept by the hundred thousand (VIPs) keep just
    the int."""

    __slots__ = ()

    def __new__(cls, file: str, line: int) -> Self:
        return int.__new__(cls, file_number(file) << _LINE_BITS | line)

    @property
    def file(self) -> str:
        return _FILES[self >> _LINE_BITS]

    @property
    def line(self) -> int:
        return self & _LINE_MASK

    def __bool__(self) -> bool:
        return True  # a location is always something (line 0 of file 0 included)

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"

    def __repr__(self) -> str:
        return f"Location(file={self.file!r}, line={self.line})"

    def __reduce__(self) -> tuple[type[Location], tuple[str, int]]:
        return Location, (self.file, self.line)  # by name: another process numbers files anew


_LINE_BITS = 32
_LINE_MASK = (1 << _LINE_BITS) - 1
_FILES: dict[int, str] = {}  # number -> file name
_FILE_NUMBERS: dict[str, int] = {}
_NUMBERS = itertools.count()


def file_number(file: str) -> int:
    """The number of `file` in the table of file names (added on first sight). A reload is
    read in a thread of the parent: setdefault and next() are atomic, so a file gets one
    number even when two threads meet it at once."""
    number = _FILE_NUMBERS.get(file)
    if number is None:
        number = _FILE_NUMBERS.setdefault(file, next(_NUMBERS))
        _FILES[number] = file
    return number


def location_base(file: str) -> int:
    """What `int.__new__(Location, base | line)` needs to make a Location of `file`
    without the Python-level __new__ (the preprocessor makes one per line)."""
    return file_number(file) << _LINE_BITS


class Severity(enum.Enum):
    FATAL = "fatal"  # the configuration cannot be read at all (missing file)
    ERROR = "error"  # unusable: nothing sensible can be run from it
    SECURITY = "security"  # script security (enable_script_security): -t exits 6
    RESET = "reset"  # keepalived would ignore or reset it with a warning
    WARNING = "warning"  # worth saying, harmless
    NOTE = "note"  # parsed, but pykeepalived does not implement it


# keepalived's config-test exit codes (enum chk_exit_code): OK 0, CONFIG 4,
# CONFIG_TEST 5, CONFIG_TEST_SECURITY 6.
EXIT_OK = 0
EXIT_CANNOT_RUN = 4
EXIT_CONFIG_ERRORS = 5
EXIT_SECURITY = 6


@dataclass(frozen=True)
class Diagnostic:
    severity: Severity
    message: str
    location: Location | None = None
    # keepalived's CONFIG_BAD_IF ("Non-existent interface specified in configuration"):
    # its -t stops there, before script security is checked (exit_code).
    bad_interface: bool = False

    def render(self, *, test_mode: bool) -> str:
        """`FILE:LINE: error: MESSAGE`, compiler style."""
        word = self.label(test_mode=test_mode)
        where = f"{self.location}: " if self.location else ""
        return f"{where}{word}: {self.message}"

    def label(self, *, test_mode: bool) -> str:
        if self.severity in (Severity.FATAL, Severity.ERROR):
            return "error"
        if self.severity in (Severity.RESET, Severity.SECURITY):
            return "error" if test_mode else "warning"
        if self.severity is Severity.NOTE:
            return "note"
        return "warning"


@dataclass
class Diagnostics:
    """Collects diagnostics in the order they were found."""

    items: list[Diagnostic] = field(default_factory=list)

    def add(self, severity: Severity, message: str, location: Location | None = None) -> None:
        self.items.append(Diagnostic(severity, message, location))

    def fatal(self, message: str, location: Location | None = None) -> None:
        self.add(Severity.FATAL, message, location)

    def error(self, message: str, location: Location | None = None) -> None:
        self.add(Severity.ERROR, message, location)

    def security(self, message: str, location: Location | None = None) -> None:
        self.add(Severity.SECURITY, message, location)

    def reset(self, message: str, location: Location | None = None) -> None:
        self.add(Severity.RESET, message, location)

    def missing_interface(self, message: str, location: Location | None = None) -> None:
        """A RESET for an interface that does not exist (see Diagnostic.bad_interface)."""
        self.items.append(Diagnostic(Severity.RESET, message, location, bad_interface=True))

    def warning(self, message: str, location: Location | None = None) -> None:
        self.add(Severity.WARNING, message, location)

    def note(self, message: str, location: Location | None = None) -> None:
        self.add(Severity.NOTE, message, location)

    def has(self, *severities: Severity) -> bool:
        return any(d.severity in severities for d in self.items)

    @property
    def can_run(self) -> bool:
        """True when the daemon may start on this configuration (RESETs become warnings)."""
        return not self.has(Severity.FATAL, Severity.ERROR)

    def exit_code(self) -> int:
        """The `-t` exit status: the most serious class seen wins, as in keepalived."""
        if self.has(Severity.FATAL):
            return EXIT_CANNOT_RUN
        if any(d.bad_interface for d in self.items):
            return EXIT_CONFIG_ERRORS  # keepalived stops at the interface, before script security
        if self.has(Severity.SECURITY):
            return EXIT_SECURITY
        if self.has(Severity.ERROR, Severity.RESET):
            return EXIT_CONFIG_ERRORS
        return EXIT_OK
