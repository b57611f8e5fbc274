"""bfd_instance blocks (keepalived.conf(5), "BFD CONFIGURATION"). Parsed and checked
as keepalived checks them; pykeepalived does not run BFD."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Self

from conf.modelclass import model_class
from conf.schema import Block, ConfigValueError, Context, FrozenMap, kw, replace
from conf.syntax import Stmt
from conf.values import Flag, Float, Int, IpAddr, IPAddress, _args

BFD_NAME_MAX = 31  # BFD_INAME_MAX - 1


@dataclass(frozen=True)
class BfdWeight:
    weight: int
    reverse: bool = False

    def __str__(self) -> str:
        return f"{self.weight} reverse" if self.reverse else str(self.weight)


class BfdWeightConv:
    takes_block = False
    syntax = "<-253..253> [reverse]"

    def __call__(self, stmt: Stmt, ctx: Context) -> BfdWeight:
        args = _args(stmt, 1, 2)
        weight = Int(-253, 253).parse(args[0])
        if len(args) > 1 and args[1] != "reverse":
            raise ConfigValueError(f"'{args[1]}' is not 'reverse'")
        return BfdWeight(weight, len(args) > 1)


@model_class
class BfdInstance(Block):
    label: ClassVar[str] = "bfd_instance"
    name: str = ""
    neighbor_ip: IPAddress | None = kw(IpAddr(), aliases=("neighbour_ip",))
    source_ip: IPAddress | None = kw(IpAddr())
    min_rx: float = kw(Float(1, 4294967), 10.0)  # milliseconds
    min_tx: float = kw(Float(1, 4294967), 10.0)
    idle_tx: float = kw(Float(1000, 4294967), 1000.0)
    multiplier: int = kw(Int(1, 255), 5)
    passive: bool = kw(Flag(), False)
    ttl: int = kw(Int(1, 255), 255)
    hoplimit: int = kw(Int(1, 255), 64)
    max_hops: int = kw(Int(-1, 255), 0)
    weight: BfdWeight = kw(BfdWeightConv(), BfdWeight(0))
    vrrp: bool = kw(Flag(), False)  # send events only to the VRRP process
    checker: bool = kw(Flag(), False)  # send events only to the checker process

    def finish(self, ctx: Context) -> Self:
        return self


def check_bfd_instances(instances: FrozenMap[str, BfdInstance], ctx: Context) -> FrozenMap[str, BfdInstance]:
    """keepalived drops a bfd_instance with a name too long, without a neighbor, with
    addresses of two families, or with the neighbor of an earlier instance."""
    kept: dict[str, BfdInstance] = {}
    neighbors: set[IPAddress] = set()
    for name, inst in instances.items():
        loc = inst.location
        if len(name) > BFD_NAME_MAX:
            ctx.diags.reset(f"bfd_instance name {name} is longer than {BFD_NAME_MAX} characters; instance ignored", loc)
            continue
        if inst.neighbor_ip is None:
            ctx.diags.reset(f"bfd_instance {name} has no neighbor_ip; instance ignored", loc)
            continue
        if inst.source_ip is not None and inst.source_ip.version != inst.neighbor_ip.version:
            ctx.diags.reset(
                f"bfd_instance {name}: source_ip {inst.source_ip} and neighbor_ip {inst.neighbor_ip} "
                "are not of the same family; instance ignored",
                inst.where("source_ip"),
            )
            continue
        if inst.neighbor_ip in neighbors:
            ctx.diags.reset(
                f"bfd_instance {name} has the neighbor_ip {inst.neighbor_ip} of another instance; instance ignored",
                inst.where("neighbor_ip"),
            )
            continue
        neighbors.add(inst.neighbor_ip)
        # vrrp and checker both given is the default: events go to both.
        kept[name] = replace(inst, vrrp=False, checker=False) if inst.vrrp and inst.checker else inst
    return instances if len(kept) == len(instances) and all(kept[n] is instances[n] for n in kept) else FrozenMap(kept)
