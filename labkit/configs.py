"""keepalived.conf text for lab scenarios: one vrrp_instance on eth0 of a lab node (labkit/lab.py),
and the global_defs around them. The same text runs under keepalived and pykeepalived."""

from __future__ import annotations

VIP = "192.0.2.100"


def instance(
    name: str = "VI_1",
    *,
    vrid: int = 51,
    prio: int = 100,
    state: str = "BACKUP",
    version: int | None = None,
    advert_int: str = "1",
    vips: tuple[str, ...] = (f"{VIP}/24",),
    nopreempt: bool = False,
    unicast_src: str | None = None,
    peers: tuple[str, ...] = (),
    extra: tuple[str, ...] = (),
) -> str:
    lines = [
        f"vrrp_instance {name} {{",
        f"    state {state}",
        "    interface eth0",
        f"    virtual_router_id {vrid}",
        f"    priority {prio}",
        f"    advert_int {advert_int}",
    ]
    if version is not None:
        lines.append(f"    version {version}")
    if nopreempt:
        lines.append("    nopreempt")
    if unicast_src is not None:
        lines.append(f"    unicast_src_ip {unicast_src}")
    if peers:
        lines += ["    unicast_peer {", *(f"        {p}" for p in peers), "    }"]
    lines += [f"    {x}" for x in extra]
    lines += ["    virtual_ipaddress {", *(f"        {v}" for v in vips), "    }", "}"]
    return "\n".join(lines) + "\n"


def config(node: int, *instances: str) -> str:
    # script_user root and no enable_script_security: the notify scripts live in the test's tmp dir.
    return f"global_defs {{\n    router_id node{node}\n    script_user root\n}}\n" + "".join(instances)
