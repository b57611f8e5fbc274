"""The lines keepalived writes about itself, in its words, so that what operators grep for
(`Running on`, `Command line:`, `Stopped - used`) is there, and what `-v` prints on stderr.
Pure: the caller passes the facts and logs or prints the lines."""

from __future__ import annotations

import os
import platform
import shlex
from collections.abc import Sequence

from watchdog.version import KEEPALIVED_COMPAT, VERSION

# keepalived's log_options: an option's value is cut into chunks of at most 100 - len(name)
# characters at spaces, the continuation lines indented under the value.
_LINE = 100

# What this implementation has, in the words of `keepalived -v`'s "Config options" line (tools
# look for JSON there before they send SIGJSON); what it lacks (SNMP, DBUS, BFD) is not listed.
CONFIG_OPTIONS = ("NFTABLES", "LVS", "VRRP", "VRRP_AUTH", "VRRP_VMAC", "JSON", "INIT=systemd", "SYSTEMD_NOTIFY")


def command_line(argv: Sequence[str]) -> list[str]:
    """`Command line: 'pykeepalived' '-D' ...` as keepalived's log_command_line wraps it."""
    words = " ".join(f"'{a}'" for a in argv)
    name = "Command line"
    width = _LINE - len(name)
    lines: list[str] = []
    while words:
        words = words.lstrip(" ")
        cut = len(words) if len(words) <= width else (words.rfind(" ", 0, width + 1) if " " in words[:width] else width)
        chunk, words = words[:cut], words[cut:]
        lines.append(f"{name}: {chunk}" if not lines else " " * (len(name) + 2) + chunk)
    return lines


def program(argv0: str) -> str:
    """argv[0] as the user typed it; `python -m haparent.cli` shows as pykeepalived."""
    return "pykeepalived" if argv0.endswith(".py") or not argv0 else argv0


def running_on(uname: os.uname_result | None = None) -> str:
    u = uname or os.uname()
    return f"Running on {u.sysname} {u.release} {u.version} (Python {platform.python_version()})"


def start_lines(argv: Sequence[str]) -> list[str]:
    """What keepalived logs after `Starting Keepalived`: the system and the command line."""
    return [running_on(), *command_line([program(argv[0]), *argv[1:]])]


def stopped(user: float, system: float) -> str:
    return f"Stopped - used {user:.6f} user time, {system:.6f} system time"


def version_text(uname: os.uname_result | None = None, distro: str | None = None) -> str:
    """`-v`, laid out as keepalived's: its first line's second word is the keepalived version
    whose behaviour (signals, dump formats) this follows, which is what tools parse it for."""
    u = uname or os.uname()
    lines = [
        f"Keepalived v{KEEPALIVED_COMPAT} (pykeepalived v{VERSION}, a re-implementation in Python)",
        "",
        f"Running on {u.sysname} {u.release} {u.version}",
    ]
    if distro:
        lines.append(f"Distro: {distro}")
    lines += ["", f"Python {platform.python_version()} ({platform.python_implementation()})"]
    lines += ["", f"Config options:  {' '.join(CONFIG_OPTIONS)}", ""]
    return "\n".join(lines)


def distro_name(os_release: str = "/etc/os-release") -> str | None:
    """PRETTY_NAME from os-release, as keepalived's `Distro:` line."""
    try:
        with open(os_release, encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, value = line.strip().partition("=")
                if key == "PRETTY_NAME":
                    return " ".join(shlex.split(value)) or None
    except OSError:
        return None
    return None
