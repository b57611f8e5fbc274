"""What existing tooling reads, side by side with keepalived 2.2.7 on the same configuration and
the same signals: the dump files (keepalived.data, .stats, .json: what keepalived-exporter parses),
the log lines operators grep for, and the syslog idents. keepalived runs in node 1 and
pykeepalived in node 2, each isolated on the bridge so that both are MASTER of everything (the
same state, so that the dumps can be compared field by field)."""

from __future__ import annotations

import json
import re
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from labkit.configs import config, instance
from labkit.lab import Daemon, Lab, wait_for

pytestmark = pytest.mark.lab

SIGJSON = signal.SIGRTMIN + 2

# keepalived reads a vrrp_script before the instances that track it (a later one is "not found").
CONFIG = config(
    1,
    "vrrp_script chk_ok {\n    script /bin/true\n    interval 1\n}\n",
    instance(
        "VI_1",
        vrid=61,
        prio=150,
        state="MASTER",
        vips=("192.0.2.100/24", "192.0.2.101/24 dev eth0 label eth0:1"),
        extra=("track_script {\n        chk_ok\n    }",),
    ),
    instance("VI_2", vrid=62, prio=100, vips=("192.0.2.102/24",)),
    instance("VI_3", vrid=63, prio=100, version=3, advert_int="0.5", vips=("192.0.2.103/24",)),
    "vrrp_sync_group G1 {\n    group {\n        VI_1\n        VI_2\n    }\n}\n",
)

# The data dump's per-instance lines keepalived writes and pykeepalived does not, because it keeps
# no such state (counters of keepalived's own bookkeeping, its file descriptors, its timer wheel).
NOT_WRITTEN = {
    "Number of config faults",
    "Number of interface and track script faults",
    "Number of track scripts init",
    "Read timeout",
    "Using smtp notification",
    "Notify deleted",
    "Notify priority changes",
    "Tracked scripts",
    "Tracked interfaces",
}
# Lines whose value is this node's own (its address, the clock).
OWN_VALUES = {"Using src_ip", "Last transition"}


def signal_and_read(d: Daemon, sig: int, name: str) -> str:
    path = d.workdir / name
    path.unlink(missing_ok=True)
    d.signal(sig)

    def written() -> str | None:
        try:
            text = path.read_text()
        except FileNotFoundError:
            return None
        return text if text.endswith("\n") or text.endswith("]") else None

    return wait_for(f"{d.kind}'s {name}", written, 10)


def topology(text: str) -> dict[str, list[tuple[str, str]]]:
    """The `VRRP Topology` section: per instance, its (key, value) lines in order; a list under
    a `Key (N):` or `Key :` line becomes one entry with the items joined."""
    section = text.split("------< VRRP Topology >------\n", 1)[1].split("------<", 1)[0]
    out: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] = []
    for line in section.splitlines():
        if line.startswith(" VRRP Instance = "):
            current = out.setdefault(line.split(" = ", 1)[1], [])
        elif line.startswith("     ") and current:
            key, value = current[-1]
            current[-1] = (key, f"{value} | {line.strip()}" if value else line.strip())
        elif line.startswith("   "):
            body = line.strip()
            key, sep, value = body.partition(" = ")
            if not sep:
                key, _, value = body.partition(":")
            current.append((key.strip(), value.strip()))
    return out


def shape(value: Any) -> str:
    return "number" if isinstance(value, (int, float)) and not isinstance(value, bool) else type(value).__name__


@pytest.fixture(scope="module")
def pair(lab_tools: None, tmp_path_factory: pytest.TempPathFactory) -> Any:
    workdir = tmp_path_factory.mktemp("parity")
    with Lab(n=2, workdir=Path(workdir)) as lab:
        lab.isolate(1)
        lab.isolate(2)
        k = lab.node(1).keepalived(CONFIG)
        p = lab.node(2).pykeepalived(CONFIG)
        for d in (k, p):
            for name in ("VI_1", "VI_2", "VI_3"):
                d.wait_state(name, "MASTER", timeout=20)
        time.sleep(1.5)  # the vrrp_script's first result, and a few adverts counted
        dumps = {}
        for d in (k, p):
            dumps[d.kind] = {
                "data": signal_and_read(d, signal.SIGUSR1, "keepalived.data"),
                "stats": signal_and_read(d, signal.SIGUSR2, "keepalived.stats"),
                "json": signal_and_read(d, SIGJSON, "keepalived.json"),
            }
        for d in (k, p):
            d.stop()
        yield dumps, {d.kind: d.log_text() for d in (k, p)}


def test_json_has_keepalived_s_keys_types_and_values(pair: Any) -> None:
    dumps, _ = pair
    theirs = {e["data"]["iname"]: e for e in json.loads(dumps["keepalived"]["json"])}
    ours = {e["data"]["iname"]: e for e in json.loads(dumps["pykeepalived"]["json"])}
    assert list(ours) == list(theirs) == ["VI_1", "VI_2", "VI_3"]
    for name, entry in theirs.items():
        for part in ("data", "stats"):
            missing = set(entry[part]) - set(ours[name][part])
            assert not missing, f"{name} {part}: keepalived's keys we lack: {missing}"
            # keepalived's keys first, in keepalived's order
            assert list(ours[name][part])[: len(entry[part])] == list(entry[part]), name
            for key, value in entry[part].items():
                assert shape(ours[name][part][key]) == shape(value), f"{name} {part}.{key}"
        data = {k: v for k, v in entry["data"].items() if k != "last_transition"}
        assert {k: ours[name]["data"][k] for k in data} == data, name
    # keepalived-exporter's own reading: the VIP's first word is its address label
    assert ours["VI_1"]["data"]["vips"] == [
        "192.0.2.100/24 dev eth0 scope global set",
        "192.0.2.101/24 dev eth0 scope global label eth0:1 set",
    ]
    assert ours["VI_1"]["data"]["wantstate"] == ours["VI_1"]["data"]["state"] == 2


def test_data_dump_has_keepalived_s_lines_in_keepalived_s_words(pair: Any) -> None:
    dumps, _ = pair
    theirs, ours = topology(dumps["keepalived"]["data"]), topology(dumps["pykeepalived"]["data"])
    assert list(ours) == list(theirs)
    for name in theirs:
        expected = [(k, v) for k, v in theirs[name] if k not in NOT_WRITTEN and not k.startswith("fd_in")]
        got = [(k, v) for k, v in ours[name]]
        assert [k for k, _ in got] == [k for k, _ in expected], name
        for (key, want), (_, have) in zip(expected, got, strict=True):
            if key == "Last transition":
                assert re.fullmatch(r"\d+\.\d{6} \(\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d\.\d{6} \d{4}\)", have), have
            elif key not in OWN_VALUES:
                assert have == want, f"{name}: {key}"
    for section in ("------< VRRP Sync groups >------", " VRRP Sync Group = G1, MASTER", " VRRP Script = chk_ok"):
        assert section in dumps["keepalived"]["data"] and section in dumps["pykeepalived"]["data"]


def test_stats_dump_is_keepalived_s_layout(pair: Any) -> None:
    dumps, _ = pair

    def layout(text: str) -> str:
        return re.sub(r"\d+", "N", text)

    assert layout(dumps["pykeepalived"]["stats"]) == layout(dumps["keepalived"]["stats"])


def test_the_log_lines_operators_grep_for(pair: Any) -> None:
    _, logs = pair
    for pattern in (
        r"Running on Linux ",
        r"Command line: '\S*(py)?keepalived' .*'-D'",
        r"Configuration file /\S+/keepalived\.conf",
        r"Opening file '/\S+/keepalived\.conf'\.",
        r"\(VI_1\) setting VIPs\.",
        r"\(VI_1\) Sending/queueing gratuitous ARPs on eth0 for 192\.0\.2\.100",
        r"Sending gratuitous ARP on eth0 for 192\.0\.2\.101",
        r"Printing VRRP data for process\(\d+\) on signal",
        r"Printing VRRP stats for process\(\d+\) on signal",
        r"Printing VRRP as json for process\(\d+\) on signal",
        r"Printing parent data for process\(\d+\) on signal",
        r"\(VI_2\) sent 0 priority",
        r"\(VI_2\) removing VIPs\.",
        r"Stopped - used .*user time, .*system time",
    ):
        for kind, text in logs.items():
            assert re.search(pattern, text), f"{kind}: no line matches {pattern!r}"
    # each process under keepalived's syslog ident
    assert re.search(r" Keepalived\[\d+\]: ", logs["pykeepalived"])
    assert re.search(r" Keepalived_vrrp\[\d+\]: ", logs["pykeepalived"])
