"""TCP_CHECK: the real server passes when a TCP connection opens within connect_timeout.

As keepalived does (check_tcp.c), the connection is closed at once: no data is sent
and nothing is read. Failures are described with keepalived's own words
("TCP connection to [10.0.0.1]:tcp:80 failed.") so that log watchers keep working.
"""

from __future__ import annotations

from conf.checkers import TcpCheck

from .base import Probe, ProbeEnv, Result, Target, connect, describe_error, failed


def fmt_check(target: Target, proto: str = "tcp") -> str:
    """keepalived's FMT_CHK: `[10.0.0.1]:tcp:80` (brackets for both families)."""
    port = 0 if target.port is None else target.port
    return f"[{target.address}]:{proto}:{port}"


def probe(checker: TcpCheck, env: ProbeEnv) -> Probe:
    """One connect attempt per call; retries and timers are the workload's."""
    del checker, env  # TCP_CHECK has no options of its own (the Target carries them)

    async def run(target: Target) -> Result:
        try:
            sock = await connect(target)
        except TimeoutError:
            return failed(f"TCP connection to {fmt_check(target)} timeout.")
        except OSError as e:
            return failed(f"TCP connection to {fmt_check(target)} failed. ({describe_error(e)})")
        sock.close()
        return Result(True, f"TCP connection to {fmt_check(target)} success.")

    return run
