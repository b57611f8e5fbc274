"""vrrp_child.logbuffer: log lines held back during urgent work come out later, unchanged and in order."""

from __future__ import annotations

import io
import logging
import time

import pytest

from vrrp_child.logbuffer import RELEASE_SLICE, LogBuffer

FORMAT = "%(asctime)s Keepalived_vrrp[%(process)d]: %(message)s"


@pytest.fixture
def root() -> logging.Logger:
    """A private root-like logger with a console handler, as haparent.logs sets up."""
    logger = logging.Logger("root-under-test", logging.DEBUG)
    return logger


def _console(logger: logging.Logger) -> io.StringIO:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter(FORMAT))
    logger.addHandler(handler)
    return out


def test_held_lines_come_out_unchanged_and_in_order(root: logging.Logger) -> None:
    out = _console(root)
    buf = LogBuffer(root)
    buf.hold()
    root.info("(%s) Entering MASTER STATE", "VI_1")
    mutable = ["before"]
    root.debug("(VI_1) %s", mutable)
    mutable[0] = "after"  # the line says what it said when it was logged
    made = time.time()
    time.sleep(0.02)
    assert out.getvalue() == "" and buf.holding
    assert buf.write_out()
    lines = out.getvalue().splitlines()
    assert [line.split(": ", 1)[1] for line in lines] == ["(VI_1) Entering MASTER STATE", "(VI_1) ['before']"]
    # the time is the time of the call, not of the writing
    stamp = time.strptime(lines[0].split(",")[0], "%Y-%m-%d %H:%M:%S")
    assert abs(time.mktime(stamp) - made) < 1.5
    assert buf.records == type(buf.records)() and not buf.holding and root.handlers[0] is not buf
    root.info("direct")
    assert out.getvalue().splitlines()[-1].endswith(": direct")


def test_the_bytes_are_those_of_a_line_written_at_once(root: logging.Logger) -> None:
    out = _console(root)
    record = root.makeRecord(root.name, logging.INFO, "", 0, "(%s) setting VIPs.", ("VI_7",), None)
    root.handle(record)
    direct = out.getvalue()
    out.truncate(0)
    out.seek(0)
    buf = LogBuffer(root)
    buf.hold()
    again = root.makeRecord(root.name, logging.INFO, "", 0, "(%s) setting VIPs.", ("VI_7",), None)
    again.created, again.msecs = record.created, record.msecs
    root.handle(again)
    buf.write_out()
    assert out.getvalue() == direct


def test_release_gives_way_to_timers_a_slice_at_a_time(root: logging.Logger) -> None:
    out = _console(root)
    buf = LogBuffer(root)
    buf.hold()
    for i in range(RELEASE_SLICE + 5):
        root.info("line %d", i)
    answers = iter([False, True])
    assert not buf.write_out(lambda: next(answers))  # one slice, then a timer is due
    assert len(out.getvalue().splitlines()) == RELEASE_SLICE and buf.holding
    root.info("later")  # still held: after the lines before it
    assert buf.write_out()
    lines = [line.split(": ", 1)[1] for line in out.getvalue().splitlines()]
    assert lines == [f"line {i}" for i in range(RELEASE_SLICE + 5)] + ["later"]


def test_unhold_only_when_nothing_waits(root: logging.Logger) -> None:
    out = _console(root)
    buf = LogBuffer(root)
    buf.hold()
    assert buf.unhold() and not buf.holding  # nothing kept: straight back
    buf.hold()
    root.warning("kept")
    assert not buf.unhold() and buf.holding and out.getvalue() == ""
    assert buf.write_out() and out.getvalue().endswith(": kept\n")


def test_a_handler_level_still_applies(root: logging.Logger) -> None:
    out = _console(root)
    root.handlers[0].setLevel(logging.INFO)
    buf = LogBuffer(root)
    buf.hold()
    root.debug("detail only")
    root.info("info")
    buf.write_out()
    assert [line.split(": ", 1)[1] for line in out.getvalue().splitlines()] == ["info"]


def test_a_lean_record_formats_to_the_same_bytes_with_every_attribute() -> None:
    from vrrp_child.logbuffer import LeanRecord

    args = ("VI_3", 198)
    plain = logging.LogRecord("pykeepalived_vrrp", logging.INFO, "(unknown file)", 0, "(%s) %d", args, None)
    lean = LeanRecord("pykeepalived_vrrp", logging.INFO, "(unknown file)", 0, "(%s) %d", args, None)
    lean.created, lean.msecs, lean.relativeCreated = plain.created, plain.msecs, plain.relativeCreated
    for fmt in (FORMAT, "Keepalived_vrrp[%(process)d]: %(message)s", "%(levelname)s %(name)s %(filename)s %(module)s"):
        formatter = logging.Formatter(fmt)
        assert formatter.format(lean) == formatter.format(plain)
    assert set(vars(plain)) <= set(vars(lean))
    # a dictionary as the only argument is still the mapping to format from
    mapped = LeanRecord("x", logging.INFO, "p", 0, "%(a)s", ({"a": "b"},), None)
    assert mapped.getMessage() == "b"
    assert LeanRecord("x", logging.INFO, "p", 0, "%s", ("just text",), None).getMessage() == "just text"


def test_lean_log_records_switches_the_factory(monkeypatch: pytest.MonkeyPatch) -> None:
    from vrrp_child.logbuffer import LeanRecord, lean_log_records

    monkeypatch.setattr(logging, "_srcfile", logging._srcfile)
    monkeypatch.setattr(logging, "logThreads", logging.logThreads)
    monkeypatch.setattr(logging, "logMultiprocessing", logging.logMultiprocessing)
    factory = logging.getLogRecordFactory()
    try:
        lean_log_records()
        record = logging.getLogger("pykeepalived_vrrp").makeRecord("x", logging.INFO, "", 0, "m", (), None)
        assert isinstance(record, LeanRecord) and record.funcName is None and record.thread is None
    finally:
        logging.setLogRecordFactory(factory)
