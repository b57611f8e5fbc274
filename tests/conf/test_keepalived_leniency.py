"""Never stricter than keepalived where that would drop service (issue 12): what
`keepalived -t` 2.2.7 accepts, we accept (with a warning where it silently drops words),
and `-t`'s exit status when several problems apply is keepalived's."""

from __future__ import annotations

from pathlib import Path

from conf.diagnostics import Severity
from tests.conf.util import config_of, parse, problems

ONE_LINE_URL = """
virtual_server 10.0.0.1 80 {
    lb_algo rr
    lb_kind NAT
    protocol TCP
    real_server 10.0.0.2 80 {
        HTTP_GET {
            url { path /health status_code 200 }
        }
    }
}
"""


def test_one_line_url_block_keeps_the_checker(tmp_path: Path) -> None:
    # keepalived reads the line as `path /health status_code 200` and keeps /health
    # (path_handler takes the first word): the checker runs with the default status codes.
    result = parse(tmp_path, ONE_LINE_URL)
    assert result.diagnostics.exit_code() == 0  # keepalived -t: 0
    (rs,) = config_of(result).virtual_server[0].real_server
    (check,) = rs.http_get
    (url,) = check.url
    assert url.path == "/health"
    assert url.matches_status(204)  # the default range, not only 200, as keepalived
    (warning,) = problems(result)
    assert warning.severity is Severity.WARNING
    assert "'status_code 200' ignored" in warning.message


FWMARK_PORT_0 = """
virtual_server fwmark 7 {
    lb_algo rr
    lb_kind DR
    real_server 10.0.0.3 0 {
        TCP_CHECK {
            connect_port 80
        }
    }
    real_server 10.0.0.4 00 {
        TCP_CHECK {
            connect_port 80
        }
    }
}
virtual_server 10.0.0.1 80 {
    lb_algo rr
    lb_kind NAT
    protocol TCP
    real_server 10.0.0.5 0 {
        TCP_CHECK {
        }
    }
}
"""


def test_real_server_port_0_is_no_port(tmp_path: Path) -> None:
    # keepalived's alloc_rs: "inet_stosockaddr rejects port 0", so a port of zeros is
    # treated as no port; keepalived -t accepts this file with exit 0.
    result = parse(tmp_path, FWMARK_PORT_0)
    assert problems(result) == []
    assert result.diagnostics.exit_code() == 0
    fwmark, plain = config_of(result).virtual_server
    assert [(str(rs.address), rs.port) for rs in fwmark.real_server] == [("10.0.0.3", None), ("10.0.0.4", None)]
    assert [rs.port for rs in plain.real_server] == [80]  # the virtual server's, as an omitted port


MISSING_IF_AND_SCRIPT = """
vrrp_script chk {
    script "/bin/true"
}
vrrp_instance VI_1 {
    interface nosuchif0
    virtual_router_id 51
    virtual_ipaddress {
        10.99.99.1/24
    }
    track_script {
        chk
    }
}
"""


def test_missing_interface_wins_over_script_security(tmp_path: Path) -> None:
    # keepalived -t 2.2.7: "Non-existent interface specified in configuration", exit 5;
    # it stops there, before the SECURITY VIOLATION check (6).
    result = parse(tmp_path, MISSING_IF_AND_SCRIPT)
    assert result.diagnostics.has(Severity.SECURITY)
    assert result.diagnostics.exit_code() == 5


def test_script_security_alone_is_6(tmp_path: Path) -> None:
    result = parse(tmp_path, MISSING_IF_AND_SCRIPT.replace("nosuchif0", "eth0"))
    assert result.diagnostics.exit_code() == 6


def test_missing_static_route_interface_wins_over_script_security(tmp_path: Path) -> None:
    text = MISSING_IF_AND_SCRIPT.replace("nosuchif0", "eth0") + "static_routes {\n 10.1.0.0/16 dev nosuchif1\n}\n"
    result = parse(tmp_path, text)
    assert result.diagnostics.exit_code() == 5
