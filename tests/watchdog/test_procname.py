"""Process names (watchdog/procname.py, GlobalDefs.names): keepalived 2.2.7's rules, and the comm
really set. tests/lab/test_procname.py reads them beside keepalived."""

from __future__ import annotations

import threading
from pathlib import Path

from conf.global_defs import GlobalDefs
from tests.conf.util import clean, parse
from watchdog.procname import ProcessName, current


def _gdefs(tmp_path: Path, body: str) -> GlobalDefs:
    return clean(parse(tmp_path, "global_defs {\n" + body + "\n}\n")).global_defs


def test_process_names_defaults_and_the_later_keyword_wins(tmp_path: Path) -> None:
    g = _gdefs(tmp_path, "process_names")
    want = {"parent": None, "vrrp": "keepalived_vrrp", "checker": "keepalived_lvs", "bfd": "keepalived_bfd"}
    assert g.names() == want
    g = _gdefs(tmp_path, "vrrp_process_name myvrrp\nprocess_names\nprocess_name top")
    assert g.names()["vrrp"] == "keepalived_vrrp" and g.names()["parent"] == "top"
    g = _gdefs(tmp_path, "process_names\nvrrp_process_name myvrrp")
    assert g.names()["vrrp"] == "myvrrp"
    assert _gdefs(tmp_path, "router_id x").names()["vrrp"] is None


def test_sets_the_comm_and_goes_back_to_the_usual_one(tmp_path: Path) -> None:
    seen: list[str] = []

    def run() -> None:  # a thread of its own: its comm is /proc/self/task/TID/comm, not pytest's
        name = ProcessName("vrrp")  # its usual name: the process's (/proc/self/comm)
        name.apply(_gdefs(tmp_path, "vrrp_process_name myvrrp"))
        seen.append(_comm())
        name.apply(_gdefs(tmp_path, "router_id x"))  # a reload that drops it
        seen.append(_comm())

    t = threading.Thread(target=run, name="pyk_test")
    t.start()
    t.join()
    assert seen == ["myvrrp", current()]


def _comm() -> str:
    return Path(f"/proc/self/task/{threading.get_native_id()}/comm").read_text().strip()


def test_current_reads_the_process_comm() -> None:
    assert current() == Path("/proc/self/comm").read_text().strip()
