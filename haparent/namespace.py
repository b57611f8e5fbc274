"""`net_namespace NAME` and `-s/--namespace NAME`: the whole daemon runs in a network
namespace, as keepalived(8) NAMESPACES describes.

keepalived 2.2.7 (core/main.c, core/namespaces.c), which we follow:
- `-s NAME` overrides the config's `net_namespace` ("Overriding config net_namespace ...");
- the syslog ident becomes `Keepalived_NAME` (children `Keepalived_vrrp_NAME`, ...), and
  `_INSTANCE` is appended for the top-level `instance` keyword;
- the parent opens /run/netns/NAME and setns(2)s into it before any child forks, so the
  VRRP child, the checker and every script they run are inside; a namespace that cannot
  be entered logs "Failed to open /run/netns/NAME" and "Unable to set network namespace
  NAME - exiting";
- default pidfiles move to a directory per namespace: keepalived bind-mounts
  /run/keepalived/NAME onto /run/keepalived in a mount namespace of its own, so its files
  are /run/keepalived/NAME/keepalived.pid seen from the host. We write the same place
  directly, /run/pykeepalived/NAME/pykeepalived.pid, without a mount namespace.
  A pidfile named with -p/-r/-c stays where it was named.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from conf.model import Config
from haparent.options import Options

NETNS_DIR = "/run/netns"  # iproute2's, as keepalived's netns_dir (RUNSTATEDIR "/netns/")
PID_DIR = "/run/keepalived"  # keepalived's KEEPALIVED_PID_DIR
CLONE_NEWNET = 0x40000000


class NamespaceError(Exception):
    """The namespace cannot be entered; the message is keepalived's two lines."""


def resolve(opts: Options, config: Config) -> Options:
    """Options as the daemon runs them: the namespace, the ident suffix and the pidfiles
    (keepalived's make_syslog_ident and make_pidfile_name)."""
    namespace = opts.namespace or config.net_namespace  # -s wins (haparent.start logs it)
    instance = config.instance
    if not namespace and not instance and not config.use_pid_dir:
        return opts
    suffix = "".join(f"_{part}" for part in (namespace, instance) if part)
    directory = os.path.join(PID_DIR, namespace) if namespace else PID_DIR
    changes: dict[str, object] = {"namespace": namespace, "ident_suffix": suffix}
    defaults = {f.name: f.default for f in dataclasses.fields(opts)}
    for name in ("pid_file", "vrrp_pid_file", "checkers_pid_file", "bfd_pid_file"):
        default = str(defaults[name])
        if getattr(opts, name) != default:
            continue  # named on the command line: keepalived keeps it
        stem = Path(default).stem + (f"_{instance}" if instance else "")
        changes[name] = os.path.join(directory, f"{stem}.pid")
    return dataclasses.replace(opts, **changes)  # type: ignore[arg-type]


def pid_directory(opts: Options) -> str | None:
    """The directory our pidfiles live in when it is ours to create (keepalived's
    create_pid_dir), else None."""
    directory = os.path.dirname(opts.pid_file)
    return directory if directory == PID_DIR or directory.startswith(PID_DIR + "/") else None


def create_pid_directory(opts: Options) -> None:
    directory = pid_directory(opts)
    if directory is not None:
        os.makedirs(directory, mode=0o755, exist_ok=True)


def remove_pid_directory(opts: Options) -> None:
    """keepalived's remove_pid_dir: only when empty (another instance may share it)."""
    directory = pid_directory(opts)
    while directory is not None and directory.startswith(PID_DIR):
        try:
            os.rmdir(directory)
        except OSError:
            return
        directory = os.path.dirname(directory)


def enter(name: str) -> None:
    """setns(2) this process into /run/netns/NAME; everything forked afterwards is in it.
    Python 3.11 has no os.setns: libc's, as tests/lab does. pyroute2's netns.setns would
    create a missing namespace by default, which is exactly what must not happen."""
    import ctypes  # noqa: PLC0415 (a namespace is rare: ctypes stays out of the others' memory)

    path = os.path.join(NETNS_DIR, name)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as e:
        raise NamespaceError(f"Failed to open {path} ({e.strerror})") from None
    try:
        if ctypes.CDLL(None, use_errno=True).setns(fd, CLONE_NEWNET) != 0:
            errno = ctypes.get_errno()
            raise NamespaceError(f"setns() failed with error {errno} ({os.strerror(errno)})")
    finally:
        os.close(fd)


def exists(name: str) -> bool:
    return os.path.exists(os.path.join(NETNS_DIR, name))
