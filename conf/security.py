"""Script security, checked at load time as keepalived checks it at start-up
(keepalived.conf(5) SCRIPTS; global_defs `enable_script_security`, `script_user`).

- A script that runs as root must not be replaceable by anyone else: neither the file
  nor any directory on its path may be writable by a non-root user (a root-owned sticky
  directory such as /tmp is fine, as in keepalived).
- With `enable_script_security`, an insecure script is disabled. Without it, keepalived
  runs the scripts but `-t` reports "SECURITY VIOLATION - scripts are being executed but
  script_security not enabled" (exit 6); we do the same.
- A vrrp_script whose script cannot be found is disabled ("Script PATH cannot be accessed -
  No such file or directory", "Disabling track script X since not found/accessible"); other
  scripts that cannot be found draw a warning, since they may be installed later.
- Messages start with keepalived 2.2.7's words ("Unsafe permissions found for script 'PATH'
  - disabling.", "Disabling track script X due to insecure"): users' log watchers match them.

Disabling sets the field to None; the VRRP and LVS checks that run afterwards then drop
what cannot work without it, in keepalived's words.
"""

from __future__ import annotations

import dataclasses
import errno
import os
import re
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from conf import accounts, schema
from conf.schema import Block, Context, FrozenMap, keyword_name
from conf.values import Script

C = TypeVar("C")

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DEFAULT_SCRIPT_USER = "keepalived_script"  # keepalived's default when the user exists


@dataclass(frozen=True)
class RunAs:
    uid: int
    gid: int
    name: str


def resolve_user(spec: str | Sequence[str]) -> RunAs | None:
    """`USER [GROUP]` (a string or a tuple of words) -> RunAs, None if unknown."""
    words = (spec,) if isinstance(spec, str) else tuple(spec)
    if not words:
        return None
    try:
        pw = accounts.getpwnam(words[0])
        gid = accounts.getgrnam(words[1]).gr_gid if len(words) > 1 else pw.pw_gid
    except KeyError:
        return None
    return RunAs(pw.pw_uid, gid, words[0])


def find_executable(path: str) -> str | None:
    if os.path.isabs(path) or "/" in path:
        return path if os.path.isfile(path) and os.access(path, os.X_OK) else None
    import shutil  # noqa: PLC0415 (bare script names only: shutil stays out of most daemons)

    return shutil.which(path, path=os.environ.get("PATH") or DEFAULT_PATH)


def insecure_reason(path: str, user: RunAs) -> str | None:
    """Why `path` could be changed by someone other than `user` and root, or None."""
    real = os.path.realpath(path)
    parts = [real]
    d = os.path.dirname(real)
    while True:
        parts.append(d)
        if d == "/":
            break
        d = os.path.dirname(d)
    for i, p in enumerate(parts):
        try:
            st = os.stat(p)
        except OSError:
            return f"cannot stat '{p}'"
        is_dir = i > 0
        if st.st_uid not in (0, user.uid):
            return f"'{p}' is owned by uid {st.st_uid}"
        if is_dir and st.st_mode & stat.S_ISVTX and st.st_uid == 0:
            continue  # a root-owned sticky directory: others cannot replace our file
        if st.st_mode & stat.S_IWOTH:
            return f"'{p}' is writable by everyone"
        if st.st_mode & stat.S_IWGRP and st.st_gid not in (0, user.gid):
            return f"'{p}' is writable by group {st.st_gid}"
    return None


@dataclass
class _Scan:
    ctx: Context
    enabled: bool
    default_user: RunAs | None
    default_user_error: str
    found: int = 0
    insecure: int = 0

    def visit(self, script: Script, user: RunAs | None, user_error: str, block: Block, fname: str) -> Script | None:
        # keepalived 2.2.7's words first (log watchers look for them), then where it is used;
        # a vrrp_script adds keepalived's second line, "Disabling track script NAME ...".
        where = block.where(fname)
        owner = getattr(block, "name", "")
        is_track_script = fname == "script"
        used = "" if is_track_script else f" ({' '.join(filter(None, (owner, keyword_name(type(block), fname))))})"
        exe = find_executable(script.path)
        if exe is None:
            missing = f"Script {script.path} cannot be accessed - {_access_error(script.path)}"
            if is_track_script and not self.ctx.settings.get("foreign_namespace"):
                self.ctx.diags.reset(f"{missing}; Disabling track script {owner} since not found/accessible", where)
                return None
            self.ctx.diags.warning(missing + used, where)
            return script
        self.found += 1
        if user is None:
            if self.enabled or user_error != self.default_user_error:
                self.ctx.diags.reset(f"Script {script.path}{used}: {user_error}; disabling it", where)
                return None
            user = RunAs(0, 0, "root")
        reason = insecure_reason(exe, user)
        if reason is None:
            return script
        self.insecure += 1
        if self.enabled:
            unsafe = f"Unsafe permissions found for script '{exe}' - disabling. ({reason})"
            tail = f"; Disabling track script {owner} due to insecure" if is_track_script else used
            self.ctx.diags.security(unsafe + tail, where)
            return None
        return script


def _access_error(path: str) -> str:
    """The errno text keepalived prints: a file that is there but not executable is EACCES."""
    if "/" in path and os.path.isfile(path):
        return os.strerror(errno.EACCES)
    return os.strerror(errno.ENOENT)


def _user_error(spec: str | Sequence[str]) -> str:
    name = spec if isinstance(spec, str) else " ".join(spec)
    return f"script user '{name}' does not exist"


def check_script_security(config: C, ctx: Context) -> C:
    """Check every script in the model; returns the model with disabled scripts removed."""
    gdefs = getattr(config, "global_defs", None)
    enabled = bool(getattr(gdefs, "enable_script_security", False))
    script_user = getattr(gdefs, "script_user", None)
    if script_user:
        default_user = resolve_user(script_user)
        default_error = _user_error(script_user)
    else:
        # keepalived: user keepalived_script if it exists, else root; with script
        # security on, a missing keepalived_script user is an error instead.
        default_user = resolve_user(DEFAULT_SCRIPT_USER)
        default_error = f"no script_user set and user '{DEFAULT_SCRIPT_USER}' does not exist"
        if default_user is None and not enabled:
            default_user = RunAs(0, 0, "root")
    _forget_walked_fields_if_blocks_came()
    scan = _Scan(ctx, enabled, default_user, default_error)
    result = _walk(config, default_user, default_error, scan.visit)
    if scan.found and not enabled:
        extra = " There are insecure scripts." if scan.insecure else ""
        ctx.diags.security(f"SECURITY VIOLATION - scripts are being executed but script_security not enabled.{extra}")
    return result  # type: ignore[no-any-return]


Visit = Callable[[Script, "RunAs | None", str, Block, str], "Script | None"]


# Field types that can hold no script: the walk skips them (it runs over every real
# server of a large configuration, so this matters).
_SCALAR_TYPES = frozenset(
    {
        "int",
        "float",
        "bool",
        "str",
        "None",
        "tuple",
        "frozenset",
        "Any",
        "IPAddress",
        "IPNetwork",
        "IPInterface",
        "IPv4Address",
        "IPv6Address",
        "IPv4Network",
        "IPv6Network",
        "IPv4Interface",
        "IPv6Interface",
        "ipaddress",
    }
)
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_WALKED_FIELDS: dict[type, tuple[str, ...]] = {}
_walked_with = 0  # schema.block_classes_defined when _WALKED_FIELDS was last cleared


def _forget_walked_fields_if_blocks_came() -> None:
    """Whether a field may hold a script depends on the Block classes defined: a field typed
    with a block not yet imported (conf.lvs_top's, read before any virtual_server) would
    otherwise stay unwalked after a reload imported it."""
    global _walked_with
    if _walked_with != schema.block_classes_defined:
        _WALKED_FIELDS.clear()
        _walked_with = schema.block_classes_defined


def _fields_to_walk(cls: type) -> tuple[str, ...]:
    """The fields of block class `cls` that may hold a Script: typed with Script, or with a
    block that may (a tuple of address entries or of TCP_CHECKs is not walked: 522,000
    VIPs or 10,000 real servers cost a large part of the reading time)."""
    names = _WALKED_FIELDS.get(cls)
    if names is None:
        blocks = _blocks_by_name()
        names = tuple(f.name for f in dataclasses.fields(cls) if f.compare and _may_hold_script(f.type, blocks, set()))
        _WALKED_FIELDS[cls] = names
    return names


def _may_hold_script(type_text: object, blocks: dict[str, list[type]], seen: set[type]) -> bool:
    if not isinstance(type_text, str):
        return True
    words = set(_IDENT.findall(type_text))
    if words <= _SCALAR_TYPES:
        return False
    if "Script" in words:
        return True
    for word in words:
        for cls in blocks.get(word, ()):
            if cls in seen:
                continue
            seen.add(cls)
            if any(f.compare and _may_hold_script(f.type, blocks, seen) for f in dataclasses.fields(cls)):
                return True
    return False


def _blocks_by_name() -> dict[str, list[type]]:
    """Every Block class defined so far, by name."""
    found: dict[str, list[type]] = {}
    todo: list[type] = [Block]
    while todo:
        cls = todo.pop()
        found.setdefault(cls.__name__, []).append(cls)
        todo.extend(cls.__subclasses__())
    return found


def _walk(obj: Any, user: RunAs | None, user_error: str, visit: Visit) -> Any:
    if isinstance(obj, Block):
        own = getattr(obj, "user", None)
        if own:
            user, user_error = resolve_user(own), _user_error(own)
        changes: dict[str, Any] = {}
        for name in _fields_to_walk(type(obj)):
            value = getattr(obj, name)
            if not value:
                continue  # None, an empty tuple or map: most fields of a large config
            if isinstance(value, Script):
                if value.user:  # `SCRIPT username [groupname]`
                    own = [w for w in (value.user, value.group) if w]
                    new = visit(value, resolve_user(own), _user_error(own), obj, name)
                else:
                    new = visit(value, user, user_error, obj, name)
            elif isinstance(value, (Block, FrozenMap, tuple)):
                new = _walk(value, user, user_error, visit)
            else:
                continue
            if new is not value:
                changes[name] = new
        return dataclasses.replace(obj, **changes) if changes else obj
    if isinstance(obj, FrozenMap):
        items = {k: _walk(v, user, user_error, visit) for k, v in obj.items()}
        return obj if all(items[k] is obj[k] for k in obj) else FrozenMap(items)
    if isinstance(obj, tuple):
        walked = tuple(_walk(v, user, user_error, visit) for v in obj)
        return obj if all(a is b for a, b in zip(walked, obj, strict=True)) else walked
    return obj
