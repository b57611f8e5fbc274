"""watchdog.coalesce: many requests in one loop pass, one call after it."""

from __future__ import annotations

import asyncio

from watchdog.coalesce import OncePerPass


def test_requests_of_one_pass_make_one_call_after_it() -> None:
    calls: list[str] = []

    async def main() -> None:
        once = OncePerPass(asyncio.get_running_loop(), lambda: calls.append("run"))
        for _ in range(3):
            once.soon()
        assert calls == []  # not during the pass
        await asyncio.sleep(0)
        assert calls == ["run"]
        once.soon()
        once.run()  # at once, when the caller cannot wait for the end of the pass
        assert calls == ["run", "run"]
        await asyncio.sleep(0)
        assert calls == ["run", "run", "run"]  # the scheduled call still runs, as before

    asyncio.run(main())
