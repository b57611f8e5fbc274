"""The generated man pages (haparent/manpages.py, `make man`): each renders with man(1)
without a groff warning, says what it should, and the section-5 page names every keyword
the configuration model knows (so a keyword added to conf/ appears in the page by itself)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from checker_child.genhash import make_parser as genhash_parser
from haparent import manpages
from haparent.cli import build_parser
from haparent.ctl import parser as ctl_parser
from tests.conf.test_keyword_coverage import every_keyword

pytestmark = pytest.mark.skipif(shutil.which("man") is None, reason="man-db is not installed")


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    outdir = tmp_path_factory.mktemp("man")
    pages = manpages.write_all(outdir)
    # Wide lines so that a phrase is never split by the filling; C.UTF-8 so that groff's
    # output does not depend on the test machine's locale.
    env = {**os.environ, "MANWIDTH": "250", "MANPAGER": "cat", "PAGER": "cat", "LC_ALL": "C.UTF-8"}
    out: dict[str, str] = {}
    for page in pages:
        r = subprocess.run(["man", "--warnings", "-l", str(page)], capture_output=True, text=True, env=env, timeout=60)
        assert r.returncode == 0, r.stderr
        assert r.stderr == "", f"{page.name}: {r.stderr}"
        out[page.name] = r.stdout
    return out


def test_every_page_is_written(rendered: dict[str, str]) -> None:
    assert set(rendered) == {"pykeepalived.8", "pykeepalivedctl.8", "pygenhash.1", "pykeepalived.conf.5"}


def _lines(text: str) -> list[str]:
    return [" ".join(line.split()) for line in text.splitlines()]


def test_daemon_page(rendered: dict[str, str]) -> None:
    text = rendered["pykeepalived.8"]
    lines = _lines(text)
    assert lines[0].startswith("PYKEEPALIVED(8)")
    assert "-f, --use-file FILE" in lines
    assert "-t, --config-test [LOG_FILE]" in lines
    assert "--metrics-address [HOST:]PORT" in lines
    assert "kill -s $(pykeepalived --signum=DATA) $(cat /run/keepalived.pid)" in lines
    for heading in ("SYNOPSIS", "OPTIONS", "EXIT STATUS", "SIGNALS", "FILES", "SEE ALSO"):
        assert heading in lines
    # Every option of the parser, so the page cannot fall behind the command line.
    for action in build_parser()._actions:
        for option in action.option_strings:
            assert re.search(rf"(^|[\s,\[]){re.escape(option)}\b", text, re.M), option


def test_ctl_page(rendered: dict[str, str]) -> None:
    text = rendered["pykeepalivedctl.8"]
    lines = _lines(text)
    assert "--socket PATH" in lines
    for command in ("status", "reload", "dump"):
        assert command in lines  # a .SS heading per sub-command
    assert "pykeepalivedctl dump [-h] [--child {vrrp,checker}] {data,stats,json}" in lines
    for action in ctl_parser()._actions:
        for option in action.option_strings:
            assert option in text


def test_genhash_page(rendered: dict[str, str]) -> None:
    text = rendered["pygenhash.1"]
    lines = _lines(text)
    assert lines[0].startswith("PYGENHASH(1)")
    assert "-s, --server SERVER" in lines
    for action in genhash_parser()._actions:
        for option in action.option_strings:
            assert option in text


def test_conf_page_names_every_keyword(rendered: dict[str, str]) -> None:
    text = rendered["pykeepalived.conf.5"]
    lines = _lines(text)
    assert "DIFFERENCES FROM KEEPALIVED.CONF(5)" in lines
    for heading in ("Top level", "global_defs", "vrrp_instance", "virtual_server", "real_server", "HTTP_GET"):
        assert heading in lines
    # Each keyword starts its own tagged paragraph: the word, then its arguments if any.
    tags = {line.split(" ", 1)[0] for line in lines}
    missing = sorted(
        f"{label}: {word}" for label, words in every_keyword().items() for word in words if word not in tags
    )
    assert missing == []


def test_conf_page_says_what_is_not_implemented(rendered: dict[str, str]) -> None:
    lines = _lines(rendered["pykeepalived.conf.5"])
    notes = {word for words in every_keyword().values() for word, spec in words.items() if spec.unsupported}
    assert notes, "the model has notes"
    i = lines.index("linkbeat_use_polling [<BOOL>]")
    assert lines[i + 1] == "NOT IMPLEMENTED: linkbeat polling is not implemented."
    i = lines.index("net_namespace STRING")
    assert lines[i + 1] == "Implemented."
    assert sum(line.startswith("NOT IMPLEMENTED:") for line in lines) >= len(notes)


def test_pages_are_reproducible(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # dpkg-buildpackage sets SOURCE_DATE_EPOCH: two builds give the same bytes.
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    first = {p.name: p.read_bytes() for p in manpages.write_all(tmp_path / "a")}
    second = {p.name: p.read_bytes() for p in manpages.write_all(tmp_path / "b")}
    assert first == second
    assert b'"2023-11-14"' in first["pykeepalived.8"]
