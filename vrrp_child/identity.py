"""What makes a vrrp_instance the same one across a reload (it keeps its state and VIPs) or a
child restart (a successor resumes it as MASTER): keepalived's vrrp_exist, VRID, family,
interface, unicast or not and its source, VMAC."""

from __future__ import annotations

from conf.vrrp import VrrpInstance


def identity(inst: VrrpInstance) -> tuple[object, ...]:
    """What must not change for an instance to keep its state across a reload (keepalived's
    vrrp_exist: VRID, family, interface, unicast or not and its source, VMAC)."""
    vmac = inst.use_vmac
    return (
        inst.virtual_router_id,
        inst.family,
        inst.interface,
        inst.is_unicast,
        inst.unicast_src_ip if inst.is_unicast else None,
        None if inst.is_unicast else inst.mcast_dst_ip,  # the multicast group joined
        (vmac.ifname, vmac.mac) if vmac is not None else None,
        inst.vmac_xmit_base,
        inst.auth_type == "AH",  # its own socket (protocol 51)
    )


def same_instance(old: VrrpInstance, new: VrrpInstance) -> bool:
    """`new` can be taken on by the running instance of `old` (watchdog.reload.plan's `same`)."""
    return identity(old) == identity(new)


def identity_text(conf: VrrpInstance) -> str:
    """The identity in the instance's state report (`"id"`): a successor child resumes an
    instance as MASTER only when its identity is the one its predecessor reported."""
    return repr(identity(conf))
