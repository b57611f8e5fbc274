"""User and group look-ups for the configuration (script_user, enable_script_security).

They go through NSS, whose modules (sssd, LDAP, nscd) keep mutexes and sockets of their own.
The parent reads a reload's configuration in a thread while it may fork a child; a fork in
the middle of a look-up would leave the child with an NSS lock held forever. So every
look-up holds LOCK, and the parent holds it across fork() (haparent.system.RealSystem.spawn)."""

from __future__ import annotations

import grp
import pwd
import threading

LOCK = threading.Lock()


def getpwnam(name: str) -> pwd.struct_passwd:
    with LOCK:
        return pwd.getpwnam(name)


def getgrnam(name: str) -> grp.struct_group:
    with LOCK:
        return grp.getgrnam(name)
