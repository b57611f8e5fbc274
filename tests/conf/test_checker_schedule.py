"""The typed scheduling interface of checkers (conf.checkers.Schedule)."""

from __future__ import annotations

from pathlib import Path

from conf.checkers import Schedule
from tests.conf.util import config_of, parse

CONF = """
virtual_server 192.0.2.1 80 {
    delay_loop 7
    real_server 10.0.0.1 80 {
        HTTP_GET {
            url { path /a }
            url { path /b }
            retry 4
        }
        SMTP_CHECK {
            host { connect_ip 10.0.0.9 }
            delay_before_retry 2
        }
        DNS_CHECK {
            alpha
        }
        TCP_CHECK {
            delay_loop 3
        }
    }
}
"""


def test_schedules_resolve_retry_delays_and_probes(tmp_path: Path) -> None:
    vs = config_of(parse(tmp_path, CONF)).virtual_server[0]
    http, smtp, dns, tcp = vs.real_server[0].checkers
    assert http.schedule(vs.delay_loop) == Schedule(delay_loop=7, delay_before_retry=3, retry=4, probes_per_run=2)
    assert smtp.schedule(vs.delay_loop) == Schedule(delay_loop=7, delay_before_retry=2, retry=1, probes_per_run=2)
    # DNS_CHECK: retry 3 and delay_before_retry its delay_loop by default
    assert dns.schedule(vs.delay_loop) == Schedule(delay_loop=7, delay_before_retry=7, retry=3)
    assert tcp.schedule(vs.delay_loop) == Schedule(delay_loop=3, delay_before_retry=1, retry=1)
    assert [c.starts_down for c in (http, smtp, dns, tcp)] == [False, False, True, False]
