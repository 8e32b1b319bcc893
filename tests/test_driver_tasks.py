"""linebridge.drivers.tasks: the one "run jobs until the first failure" helper the drivers share."""

from __future__ import annotations

import asyncio
import sys

import pytest

from linebridge.devices.sessions import settle
from linebridge.drivers.tasks import bounded, until_first_failure


class Boom(Exception):
    pass


async def test_first_failure_is_reraised_as_is_and_the_rest_cancelled():
    started = asyncio.Event()
    cancelled = asyncio.Event()

    async def forever():
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async def fails():
        await started.wait()
        raise Boom("first")

    with pytest.raises(Boom, match="first"):  # not an ExceptionGroup
        await until_first_failure([forever(), fails()])
    assert cancelled.is_set()


async def test_jobs_that_finish_cleanly_return():
    done = []

    async def job(n):
        done.append(n)

    await until_first_failure([job(1), job(2)])
    assert sorted(done) == [1, 2]


async def test_no_jobs_idles_until_cancelled():
    task = asyncio.create_task(until_first_failure([]))
    for _ in range(5):
        await asyncio.sleep(0)
    assert not task.done()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_cancelling_the_caller_cancels_every_job():
    running = asyncio.Event()
    started, cancelled = [], []

    async def job(n):
        started.append(n)
        if len(started) == 2:
            running.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.append(n)
            raise

    task = asyncio.create_task(until_first_failure([job(1), job(2)]))
    await running.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert sorted(cancelled) == [1, 2]


class SwallowsFirstCancel:
    """A job that swallows the first cancel (what Python 3.11's wait_for race looks like from inside: the
    job goes on to its streaming loop) and ends on the next one."""

    def __init__(self) -> None:
        self.connecting = asyncio.Event()
        self.ended: list[str] = []

    async def run(self) -> None:
        try:
            self.connecting.set()
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            pass  # swallowed on purpose
        try:
            await asyncio.Event().wait()
        finally:
            self.ended.append("stream")


async def test_a_job_that_swallows_one_cancel_is_cancelled_again_until_it_ends():
    """Python 3.11's asyncio.wait_for can swallow a cancel that arrives as its inner call finishes (seen as
    UrDriver.stream tasks outliving a stopped bridge under load): the helper repeats the cancel."""
    job = SwallowsFirstCancel()
    task = asyncio.create_task(until_first_failure([job.run()]))
    await job.connecting.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 5)
    assert job.ended == ["stream"]


async def test_a_session_stream_that_swallows_one_cancel_still_ends_when_the_session_settles():
    """The session's liveness watch stops a driver's stream with `settle`: it too repeats the cancel, so a
    stream that swallowed the first one (and would stream on) ends before settle's bound."""
    job = SwallowsFirstCancel()
    task = asyncio.create_task(job.run())
    await job.connecting.wait()
    task.cancel()
    await settle(task, 5.0)
    assert task.done() and job.ended == ["stream"]


@pytest.mark.parametrize("wait", ["bounded", "asyncio.wait_for"])
async def test_a_cancel_that_lands_as_a_bounded_call_finishes_is_delivered(wait: str):
    """The call finishes and the cancel lands in the same turn of the loop: `bounded` delivers the cancel;
    on Python 3.11 `asyncio.wait_for` returns the result instead and the caller goes on (the contrast is
    checked too, so this test notices when a Python version makes the helper unnecessary)."""
    gate: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    went_on: list[int] = []

    async def call() -> int:
        return await gate

    async def caller() -> None:
        value = await (bounded(call(), 5) if wait == "bounded" else asyncio.wait_for(call(), 5))
        went_on.append(value)  # e.g. send the motion script

    task = asyncio.create_task(caller())
    await asyncio.sleep(0)  # the caller is waiting on the call
    gate.set_result(1)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    if wait == "bounded" or sys.version_info >= (3, 12):
        assert task.cancelled() and went_on == []
    else:
        assert not task.cancelled() and went_on == [1]  # the flaw `bounded` exists for
