"""The normalized configuration as JSON (`--print-config`).

Keys are keepalived's keywords (the model's field names, or the keyword a field was
declared with); named blocks appear under their names; every default is filled in.
"""

from __future__ import annotations

import dataclasses
import enum
import ipaddress
import json
from collections.abc import Mapping

from conf.addresses import IpAddressEntry
from conf.schema import KW, KeywordSpec
from conf.values import Script

JSON = str | int | float | bool | None | list["JSON"] | dict[str, "JSON"]


def to_jsonable(value: object) -> JSON:
    if isinstance(value, IpAddressEntry):  # compact, not a dataclass: its options by keyword
        return {key: to_jsonable(v) for key, v in value.dump_items()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        if isinstance(value, Script):
            return {"command": str(value), "user": value.user, "group": value.group}
        out: dict[str, JSON] = {}
        for f in dataclasses.fields(value):
            if not f.compare:
                continue
            spec: KeywordSpec | None = f.metadata.get(KW)
            key = (spec.keyword if spec else "") or f.name
            out[key] = to_jsonable(getattr(value, f.name))
        return out
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (tuple, list, frozenset, set)):
        items = [to_jsonable(v) for v in value]
        return sorted(items, key=str) if isinstance(value, (frozenset, set)) else items
    if isinstance(value, enum.Enum):
        return to_jsonable(value.value)
    if isinstance(
        value,
        (
            ipaddress.IPv4Address,
            ipaddress.IPv6Address,
            ipaddress.IPv4Network,
            ipaddress.IPv6Network,
            ipaddress.IPv4Interface,
            ipaddress.IPv6Interface,
        ),
    ):
        return str(value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def dumps(config: object) -> str:
    return json.dumps(to_jsonable(config), indent=2, ensure_ascii=False)
