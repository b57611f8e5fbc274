"""Checker blocks of a real_server: each type's keywords, defaults and checks."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from conf import LoadResult
from conf.checkers import (
    DEFAULT_SMTP_HELO,
    CodeRange,
    RegexStack,
    ReplyPattern,
)
from conf.diagnostics import Diagnostic, Severity
from conf.lvs import RealServer
from conf.trackers import Weight
from tests.conf.util import config_of, parse, problems

PREFIX = """\
virtual_server 10.0.0.1 80 {
  protocol TCP
  lb_algo rr
  lb_kind NAT
  real_server 10.0.0.2 80 {
"""
FIRST = 6  # line of the first line of `body`


# FILE_CHECKs name this track_file; it comes after the body so that line numbers hold.
TRACK_FILES = "track_file tf {\n  file /run/pykeepalived-test-tf\n}\n"


def conf_text(body: str) -> str:
    return PREFIX + body + "  }\n}\n" + TRACK_FILES


def load(tmp_path: Path, body: str) -> LoadResult:
    return parse(tmp_path, conf_text(body))


def rs_of(result: LoadResult) -> RealServer:
    servers = config_of(result).virtual_server[0].real_server
    assert len(servers) == 1
    return servers[0]


def clean_rs(tmp_path: Path, body: str) -> RealServer:
    result = load(tmp_path, body)
    found = [d for d in problems(result) if d.severity is not Severity.SECURITY and "script" not in d.message.lower()]
    assert not found, [d.render(test_mode=True) for d in found]
    return rs_of(result)


def only(result: LoadResult, severity: Severity = Severity.RESET) -> Diagnostic:
    found = problems(result, severity)
    assert len(found) == 1, [d.render(test_mode=True) for d in found]
    return found[0]


def test_tcp_check_connection_options(tmp_path: Path) -> None:
    body = """\
    TCP_CHECK {
      connect_ip 10.0.0.3
      connect_port 8080
      bindto 10.0.0.1
      bind_if eth0
      bind_port 1000
      fwmark 5
      connect_timeout 2.5
      alpha
      retry 0
      delay_before_retry 0.5
      warmup 3
      delay_loop 7
      log_all_failures
    }
"""
    (c,) = clean_rs(tmp_path, body).tcp_check
    assert c.connect_ip == ipaddress.ip_address("10.0.0.3") and c.connect_port == 8080
    assert c.bindto == ipaddress.ip_address("10.0.0.1") and c.bind_if == "eth0" and c.bind_port == 1000
    assert (c.fwmark, c.connect_timeout, c.alpha, c.retry) == (5, 2.5, True, 0)
    assert (c.delay_before_retry, c.warmup, c.delay_loop, c.log_all_failures) == (0.5, 3, 7, True)


def test_tcp_check_defaults(tmp_path: Path) -> None:
    (c,) = clean_rs(tmp_path, "    TCP_CHECK {\n    }\n").tcp_check
    assert c.connect_ip is None and c.connect_port is None and c.bindto is None and c.fwmark is None
    assert (c.connect_timeout, c.retry, c.delay_before_retry, c.delay_loop, c.warmup) == (5, 1, 1, 60, 60)
    assert c.alpha is False and c.log_all_failures is False


def test_nb_get_retry_is_deprecated(tmp_path: Path) -> None:
    result = load(tmp_path, "    HTTP_GET {\n      nb_get_retry 4\n      url {\n        path /\n      }\n    }\n")
    d = only(result, Severity.WARNING)
    assert d.location is not None and d.location.line == FIRST + 1 and "use 'retry'" in d.message
    assert rs_of(result).http_get[0].retry == 4


def test_http_get_keywords(tmp_path: Path) -> None:
    body = """\
    HTTP_GET {
      http_protocol 1.0c
      fast_recovery
      virtualhost ck.example
      url {
        path /index.html
        digest FF20AD2481F97B1754EF3E12ECD3A9CC
        status_code 200-299 401
        virtualhost url.example
        regex ^OK
        regex_no_match
        regex_options caseless multiline
        regex_stack 1000 2000
        regex_min_offset 2
        regex_max_offset 100
      }
      url {
        path /other
      }
    }
"""
    (h,) = clean_rs(tmp_path, body).http_get
    assert h.http_protocol == "1.0C" and h.fast_recovery and h.virtualhost == "ck.example" and not h.is_ssl
    assert h.delay_before_retry == 3  # the HTTP default
    u, other = h.url
    assert u.path == "/index.html" and u.digest == "ff20ad2481f97b1754ef3e12ecd3a9cc"
    assert u.status_code == (CodeRange(200, 299), CodeRange(401, 401))
    assert u.matches_status(401) and not u.matches_status(302)
    assert u.virtualhost == "url.example" and u.regex == "^OK" and u.regex_no_match
    assert u.regex_options == ("caseless", "multiline") and u.regex_stack == RegexStack(1000, 2000)
    assert (u.regex_min_offset, u.regex_max_offset) == (2, 100)
    assert other.status_code == (CodeRange(200, 299),) and other.digest is None


def test_ssl_get_enable_sni(tmp_path: Path) -> None:
    (s,) = clean_rs(tmp_path, "    SSL_GET {\n      enable_sni\n      url {\n        path /\n      }\n    }\n").ssl_get
    assert s.enable_sni and s.is_ssl and s.http_protocol == "1.0"


@pytest.mark.parametrize(
    ("digest", "message"),
    [("1234", "should be 32 hex characters, not 4"), ("zz20ad2481f97b1754ef3e12ecd3a9cc", "not hexadecimal")],
)
def test_http_digest_must_be_32_hex(tmp_path: Path, digest: str, message: str) -> None:
    body = f"    HTTP_GET {{\n      url {{\n        path /\n        digest {digest}\n      }}\n    }}\n"
    result = load(tmp_path, body)
    d = only(result)
    assert d.location is not None and d.location.line == FIRST + 3 and message in d.message
    assert rs_of(result).http_get[0].url[0].digest is None


def test_status_code_bad_items_are_skipped(tmp_path: Path) -> None:
    body = (
        "    HTTP_GET {\n      url {\n        path /\n        status_code 200 abc 600 300-200 99 503\n      }\n    }\n"
    )
    result = load(tmp_path, body)
    found = problems(result, Severity.RESET)
    assert [d.message.split("'")[1] for d in found] == ["abc", "600", "300-200", "99"]
    assert all(d.location is not None and d.location.line == FIRST + 3 for d in found)
    assert rs_of(result).http_get[0].url[0].status_code == (CodeRange(200, 200), CodeRange(503, 503))


def test_status_code_all_bad_uses_default(tmp_path: Path) -> None:
    body = "    HTTP_GET {\n      url {\n        path /\n        status_code 999\n      }\n    }\n"
    result = load(tmp_path, body)
    assert "using the default (200-299)" in problems(result, Severity.RESET)[-1].message
    assert rs_of(result).http_get[0].url[0].status_code == (CodeRange(200, 299),)


def test_url_without_path_is_dropped(tmp_path: Path) -> None:
    body = """\
    HTTP_GET {
      url {
        path /
      }
      url {
        digest ff20ad2481f97b1754ef3e12ecd3a9cc
      }
    }
"""
    result = load(tmp_path, body)
    d = only(result)
    assert d.location is not None and d.location.line == FIRST + 4 and "no path" in d.message
    assert len(rs_of(result).http_get[0].url) == 1


def test_http_get_without_url_is_dropped(tmp_path: Path) -> None:
    result = load(tmp_path, "    HTTP_GET {\n      connect_timeout 2\n    }\n")
    d = only(result)
    assert d.location is not None and d.location.line == FIRST and "no url" in d.message
    assert rs_of(result).http_get == ()


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("http_protocol 2.0", "not one of 1.0|1.0C|1.1"),
        ("connect_port 0", "outside the range [1, 65535]"),
        ("connect_ip 1.2.3.4.5", "not an IP address"),
        ("connect_timeout 0", "outside the range"),
        ("warmup -1", "outside the range"),
        ("fwmark -1", "outside the range"),
        ("misc_path /bin/true", "unknown keyword 'misc_path' in HTTP_GET"),
    ],
)
def test_checker_value_errors(tmp_path: Path, line: str, message: str) -> None:
    body = f"    HTTP_GET {{\n      {line}\n      url {{\n        path /\n      }}\n    }}\n"
    result = load(tmp_path, body)
    d = only(result)
    assert d.location is not None and d.location.line == FIRST + 1 and message in d.message
    assert len(rs_of(result).http_get) == 1


def test_regex_options_must_be_known(tmp_path: Path) -> None:
    body = "    HTTP_GET {\n      url {\n        path /\n        regex x\n        regex_options foo\n      }\n    }\n"
    d = only(load(tmp_path, body))
    assert d.location is not None and d.location.line == FIRST + 4 and "unknown option(s) foo" in d.message


def test_a_regex_python_cannot_compile_is_reported_where_it_stands(tmp_path: Path) -> None:
    body = '    HTTP_GET {\n      url {\n        path /\n        regex "ab(c"\n      }\n    }\n'
    d = only(load(tmp_path, body), Severity.WARNING)
    assert d.location is not None and d.location.line == FIRST + 3
    assert d.message.startswith("regex 'ab(c' does not compile with Python's re (missing ), unterminated subpattern")


def test_smtp_check_hosts(tmp_path: Path) -> None:
    body = """\
    SMTP_CHECK {
      connect_timeout 10
      retry 2
      helo_name "foo.bar.com"
      host {
        connect_ip 172.16.1.12
        connect_port 25
        bindto 172.16.1.2
      }
      host {
        connect_ip 192.168.155.11
        connect_timeout 3
      }
    }
    SMTP_CHECK {
    }
"""
    smtp, plain = clean_rs(tmp_path, body).smtp_check
    assert smtp.helo_name == "foo.bar.com" and len(smtp.host) == 2
    h1, h2 = smtp.host
    assert h1.connect_ip == ipaddress.ip_address("172.16.1.12") and h1.connect_port == 25
    assert (h1.connect_timeout, h1.retry) == (10, 2)  # from the SMTP_CHECK
    assert (h2.connect_timeout, h2.retry) == (3, 2)
    assert plain.helo_name == DEFAULT_SMTP_HELO and plain.host == ()


def test_smtp_host_rejects_helo_name(tmp_path: Path) -> None:
    body = "    SMTP_CHECK {\n      host {\n        helo_name x\n      }\n    }\n"
    d = only(load(tmp_path, body))
    assert d.location is not None and d.location.line == FIRST + 2
    assert "unknown keyword 'helo_name' in SMTP_CHECK host" in d.message


def test_dns_check(tmp_path: Path) -> None:
    (d,) = clean_rs(tmp_path, "    DNS_CHECK {\n      type aaaa\n      name example.com\n    }\n").dns_check
    assert d.type == "AAAA" and d.name == "example.com" and d.retry == 3
    (d,) = clean_rs(tmp_path, "    DNS_CHECK {\n    }\n").dns_check
    assert d.type == "SOA" and d.name == "."


def test_dns_check_bad_type(tmp_path: Path) -> None:
    result = load(tmp_path, "    DNS_CHECK {\n      type FOO\n    }\n")
    d = only(result)
    assert d.location is not None and d.location.line == FIRST + 1
    assert "not one of A|NS|CNAME|SOA|MX|TXT|AAAA" in d.message and "using the default (SOA)" in d.message
    assert rs_of(result).dns_check[0].type == "SOA"


def test_misc_check(tmp_path: Path) -> None:
    body = """\
    MISC_CHECK {
      misc_path "/bin/true arg1 arg2"
      misc_timeout 5
      misc_dynamic
      user root
      alpha
      retry 2
      delay_before_retry 1
      warmup 1
      delay_loop 3
      log_all_failures
    }
"""
    (m,) = clean_rs(tmp_path, body).misc_check
    assert m.misc_path is not None and m.misc_path.argv == ("/bin/true", "arg1", "arg2")
    assert (m.misc_timeout, m.misc_dynamic, m.user, m.alpha, m.retry) == (5, True, ("root",), True, 2)


def test_misc_check_without_path_is_dropped(tmp_path: Path) -> None:
    result = load(tmp_path, "    MISC_CHECK {\n      misc_timeout 3\n    }\n")
    d = only(result)
    assert d.location is not None and d.location.line == FIRST and "no misc_path" in d.message
    assert rs_of(result).misc_check == ()


def test_misc_check_unknown_user_is_dropped(tmp_path: Path) -> None:
    result = load(tmp_path, "    MISC_CHECK {\n      misc_path /bin/true\n      user nosuchuser_pyka\n    }\n")
    # conf.security reports the user at the misc_path line; the checker then goes.
    found = [d for d in problems(result, Severity.RESET) if "nosuchuser_pyka" in d.message]
    assert len(found) == 1 and found[0].location is not None and found[0].location.line == FIRST + 1
    assert rs_of(result).misc_check == ()


@pytest.mark.parametrize("line", ["connect_ip 1.2.3.4", "connect_timeout 3", "bindto 10.0.0.1"])
def test_misc_check_has_no_connection_options(tmp_path: Path, line: str) -> None:
    result = load(tmp_path, f"    MISC_CHECK {{\n      misc_path /bin/true\n      {line}\n    }}\n")
    d = only(result)
    assert d.location is not None and d.location.line == FIRST + 2
    assert f"unknown keyword '{line.split(maxsplit=1)[0]}' in MISC_CHECK" in d.message


def test_udp_check(tmp_path: Path) -> None:
    body = """\
    UDP_CHECK {
      payload Ab12f 3 456 546443123
      require_reply 1x 2
      min_reply_length 2
      max_reply_length 100
    }
    UDP_CHECK {
      require_reply
    }
"""
    u, bare = clean_rs(tmp_path, body).udp_check
    assert u.payload == bytes.fromhex("AB120F0345065464431203")
    assert u.require_reply == ReplyPattern(b"\x10\x02", b"\xf0\xff")
    assert str(u.require_reply) == "1X02"
    assert (u.min_reply_length, u.max_reply_length) == (2, 100)
    assert bare.require_reply == ReplyPattern() and bare.payload is None and bare.max_reply_length == 255


def test_udp_check_errors(tmp_path: Path) -> None:
    result = load(tmp_path, "    UDP_CHECK {\n      payload xyz\n      min_reply_length 300\n    }\n")
    reset = only(result)
    assert reset.location is not None and reset.location.line == FIRST + 1 and "not a hex string" in reset.message
    warning = only(result, Severity.WARNING)
    assert warning.location is not None and warning.location.line == FIRST + 2 and "always fail" in warning.message


def test_ping_check(tmp_path: Path) -> None:
    (p,) = clean_rs(tmp_path, "    PING_CHECK {\n      retry 4\n    }\n").ping_check
    assert p.retry == 4 and p.connect_timeout == 5


def test_file_check(tmp_path: Path) -> None:
    body = "    FILE_CHECK {\n      track_file tf\n      dynamic\n      weight -5 reverse\n    }\n"
    (f,) = clean_rs(tmp_path, body).file_check
    assert f.track_file == "tf" and f.dynamic and f.weight == Weight(-5, True)


@pytest.mark.parametrize(
    ("body", "line", "message"),
    [
        ("    FILE_CHECK {\n    }\n", FIRST, "no track_file"),
        ("    FILE_CHECK {\n      track_file tf\n      retry 1\n    }\n", FIRST + 2, "unknown keyword 'retry'"),
        ("    FILE_CHECK {\n      track_file tf\n      weight 3 foo\n    }\n", FIRST + 2, "unknown option 'foo'"),
    ],
)
def test_file_check_errors(tmp_path: Path, body: str, line: int, message: str) -> None:
    d = only(load(tmp_path, body))
    assert d.location is not None and d.location.line == line and message in d.message


def test_bfd_check_is_parsed_but_unsupported(tmp_path: Path) -> None:
    result = load(tmp_path, "    BFD_CHECK {\n      name b1\n      alpha\n    }\n")
    note = only(result, Severity.NOTE)
    assert note.location is not None and note.location.line == FIRST and "BFD" in note.message
    (b,) = rs_of(result).bfd_check
    assert b.name == "b1" and b.alpha


def test_checker_takes_no_value(tmp_path: Path) -> None:
    d = only(load(tmp_path, "    TCP_CHECK foo {\n    }\n"))
    assert d.location is not None and d.location.line == FIRST and "takes no value" in d.message


def test_bindto_family_mismatch_warns(tmp_path: Path) -> None:
    result = load(tmp_path, "    TCP_CHECK {\n      connect_ip 10.0.0.3\n      bindto 2001:db8::1\n    }\n")
    d = only(result, Severity.WARNING)
    assert d.location is not None and d.location.line == FIRST + 2 and "cannot connect" in d.message


def test_bind_if_that_does_not_exist_warns(tmp_path: Path) -> None:
    result = load(tmp_path, "    TCP_CHECK {\n      bind_if nosuch0\n    }\n")
    d = only(result, Severity.WARNING)
    assert d.location is not None and d.location.line == FIRST + 1 and "nosuch0" in d.message
