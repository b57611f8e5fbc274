"""pykeepalivedctl: ask the running daemon over its control socket (haparent.control).

    pykeepalivedctl [--socket PATH] status [--json]
    pykeepalivedctl [--socket PATH] reload
    pykeepalivedctl [--socket PATH] dump data|stats|json

Exit status: 0 done, 1 the daemon is not running (no socket, nobody listening) or said no
(a reload with errors), 2 usage. The plain status is a compact view for a person; `--json`
is the daemon's answer as is (docs/status.md describes it).
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import time
from collections.abc import Mapping, Sequence

from haparent.control import DEFAULT_PATH, MAX_ANSWER
from watchdog.protocol import Json
from watchdog.statekeys import KeyKind, kind_of

EXIT_OK = 0
EXIT_FAILED = 1
TIMEOUT = 30.0  # s: a reload of a huge configuration answers when it is done


class NotRunning(Exception):
    pass


def request(path: str, obj: dict[str, Json], timeout: float = TIMEOUT) -> dict[str, Json]:
    """One request, one answer (a JSON line)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect(path)
        except (FileNotFoundError, ConnectionRefusedError) as e:
            raise NotRunning(f"pykeepalived is not running (no control socket at {path}: {e.strerror})") from None
        except PermissionError:
            raise NotRunning(f"permission denied on {path}: the control socket is root's") from None
        sock.sendall(json.dumps(obj).encode() + b"\n")
        data = bytearray()
        while not data.endswith(b"\n") and len(data) <= MAX_ANSWER:
            chunk = sock.recv(1 << 20)
            if not chunk:
                break
            data += chunk
    if not data.endswith(b"\n"):
        raise NotRunning("the daemon closed the connection without an answer")
    answer = json.loads(data)
    if not isinstance(answer, dict):
        raise NotRunning("the daemon's answer is not a JSON object")
    return answer


def _age(seconds: object) -> str:
    if not isinstance(seconds, int | float):
        return "-"
    s = int(seconds)
    if s < 60:
        return f"{seconds:.1f}s" if seconds < 10 else f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def _since(when: Json) -> str:
    """How long ago a wall-clock time was (a state change), `-` when there is none."""
    if not isinstance(when, int | float) or isinstance(when, bool) or when <= 0:
        return "-"
    return _age(max(0.0, time.time() - when))


def _table(rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in rows]


def _dict(value: Json) -> Mapping[str, Json]:
    return value if isinstance(value, dict) else {}


def _list(value: Json) -> list[Json]:
    return value if isinstance(value, list) else []


def render_status(status: Mapping[str, Json]) -> str:
    """The compact view: the daemon, its children, the VRRP instances, the virtual servers."""
    reload = "last reload failed: " + str(status["last_reload_error"]) if status.get("last_reload_error") else "ok"
    lines = [
        f"pykeepalived {status.get('version')} pid {status.get('pid')}, {status.get('config_file')} "
        f"(read {_age(status.get('config_age'))} ago, {status.get('reloads')} reloads, {reload})",
        f"  {status.get('status')}",
        "",
        *_table(_children_rows(status)),
    ]
    for rows in (_instance_rows(status), _server_rows(status)):
        if len(rows) > 1:
            lines += ["", *_table(rows)]
    missing = _list(status.get("missing"))
    if missing:
        lines += ["", "no answer from: " + ", ".join(map(str, missing))]
    return "\n".join(lines) + "\n"


def _children_rows(status: Mapping[str, Json]) -> list[list[str]]:
    rows = [["CHILD", "STATE", "PID", "UPTIME", "RESTARTS", "HEARTBEAT", "LAST EXIT"]]
    for c in map(_dict, _list(status.get("children"))):
        if c.get("phase") == "stopped" and not c.get("restarts"):
            continue
        rows.append(
            [
                str(c.get("role")),
                str(c.get("phase")),
                str(c.get("pid") or "-"),
                _age(c.get("uptime")),
                str(c.get("restarts")),
                _age(c.get("heartbeat_age")) + " ago" if c.get("heartbeat_age") is not None else "-",
                str(c.get("last_exit") or "-"),
            ]
        )
    return rows


def _instances(status: Mapping[str, Json]) -> list[Mapping[str, Json]]:
    """The VRRP child's instances, and those it reported but does not run yet (waiting for
    their interface)."""
    instances = [_dict(_dict(i).get("data")) for i in _list(status.get("vrrp"))]
    shown = {d.get("iname") for d in instances}
    for c in map(_dict, _list(status.get("children"))):
        if c.get("role") == "vrrp":
            for name, value in _dict(c.get("reported")).items():
                state = _dict(value).get("state")
                if name not in shown and name and kind_of(name) is KeyKind.NAME and state:
                    instances.append({"iname": name, "state_name": state})
    return instances


def _instance_rows(status: Mapping[str, Json]) -> list[list[str]]:
    rows = [["INSTANCE", "STATE", "SINCE", "PRIO", "VRID", "INTERFACE", "MASTER", "ADVERT", "SYNC GROUP", "VIPS"]]
    for d in _instances(status):
        prio = f"{d.get('effective_priority')}"
        if d.get("effective_priority") != d.get("base_priority"):
            prio += f"/{d.get('base_priority')}"
        vips = [str(v).split(" ", 1)[0] for v in _list(d.get("vips"))]  # "ADDR/PREFIX dev IF ..."
        rows.append(
            [
                str(d.get("iname")),
                str(d.get("state_name")) + (f" ({d.get('fault_reason')})" if d.get("fault_reason") else ""),
                _since(d.get("last_transition")),
                prio if d.get("effective_priority") is not None else "-",
                str(d.get("vrid") or "-"),
                str(d.get("ifp_ifname") or "-"),
                str(d.get("master_saddr") or "-"),
                f"{d.get('adver_int')}s" if d.get("adver_int") is not None else "-",
                str(d.get("sync_group") or "-"),
                ", ".join(vips[:3]) + (f" +{len(vips) - 3}" if len(vips) > 3 else ""),
            ]
        )
    return rows


def _server_rows(status: Mapping[str, Json]) -> list[list[str]]:
    rows = [["VIRTUAL SERVER", "STATE", "REAL SERVERS UP", "IPVS"]]
    checker = _dict(status.get("checker"))
    ipvs = _dict(checker.get("ipvs"))
    programmed = "yes" if ipvs.get("programmed", True) else "no"
    for vs in map(_dict, _list(checker.get("virtual_servers"))):
        rss = [_dict(r) for r in _list(vs.get("real_servers"))]
        up = sum(1 for r in rss if r.get("alive"))
        state = "UP" if vs.get("quorum_up", True) else "QUORUM DOWN"
        rows.append([str(vs.get("vs")), state, f"{up}/{len(rss)}", programmed])
    return rows


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pykeepalivedctl", description="Ask the running pykeepalived.")
    p.add_argument("--socket", default=DEFAULT_PATH, metavar="PATH", help=f"control socket (default {DEFAULT_PATH})")
    sub = p.add_subparsers(dest="cmd", required=True)
    status = sub.add_parser("status", help="what every instance, virtual server and child is doing")
    status.add_argument("--json", action="store_true", help="the whole answer as JSON (docs/status.md)")
    sub.add_parser("reload", help="reload the configuration and say how it went")
    dump = sub.add_parser("dump", help="a dump on stdout, as SIGUSR1/SIGUSR2/SIGRTMIN+2 write it to $TMPDIR")
    dump.add_argument("what", choices=("data", "stats", "json"))
    dump.add_argument(
        "--child",
        choices=("vrrp", "checker"),
        default="vrrp",
        help="whose stats or json (default vrrp, as keepalived's signals); data is every process's",
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    ns = parser().parse_args(argv)
    try:
        if ns.cmd == "status":
            answer = request(ns.socket, {"cmd": "status"})
        elif ns.cmd == "reload":
            answer = request(ns.socket, {"cmd": "reload"})
        else:
            answer = request(ns.socket, {"cmd": "dump", "what": ns.what, "child": ns.child})
    except (NotRunning, OSError, ValueError) as e:
        sys.stderr.write(f"pykeepalivedctl: {e}\n")
        return EXIT_FAILED
    for line in _list(answer.get("diagnostics")):
        sys.stderr.write(f"{line}\n")  # the reload's diagnostics, as -t prints them
    if ns.cmd == "status" and ns.json:
        sys.stdout.write(json.dumps(answer, indent=2) + "\n")
    elif not answer.get("ok"):
        sys.stderr.write(f"pykeepalivedctl: {'reload failed: ' if ns.cmd == 'reload' else ''}{answer.get('error')}\n")
        return EXIT_FAILED
    elif ns.cmd == "status":
        sys.stdout.write(render_status(answer))
    elif ns.cmd == "reload":
        sys.stdout.write(f"reload complete in {answer.get('seconds')} s\n")
    else:
        sys.stdout.write(str(answer.get("text") or ""))
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
