"""ModelScheduler in-process, on a real tiny session and no sockets: what merges into one run,
what never runs, and what a full queue answers. Requests are queued before the runner wakes,
so what is queued together is decided by the test, not by timing."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from inferencehub.errors import DeadlineExceededError, OverloadedError
from inferencehub.worker.layout import Layout
from inferencehub.worker.onnx_model import OnnxModel
from inferencehub.worker.repository import ModelConfig
from inferencehub.worker.scheduler import ModelScheduler, Prediction
from tests.model_builders import scale_model


@pytest.fixture
async def scheduler(tmp_path: Path) -> AsyncIterator[ModelScheduler]:
    config = ModelConfig(max_batch_size=8, max_queue_size=4)
    model = OnnxModel(
        "m",
        "1",
        scale_model(tmp_path / "m.onnx", [1, 2, 3, 4]),
        config,
        None,
        layout=Layout(instances=1, threads=1),
        max_image_pixels=1_000_000,
    )
    with ThreadPoolExecutor(2) as executor:
        running = ModelScheduler(model, executor)
        yield running
        await running.close()


def rows(*values: float) -> dict[str, np.ndarray]:
    return {"x": np.array([[v] * 4 for v in values], np.float32)}


def queue(
    scheduler: ModelScheduler, feeds: dict[str, np.ndarray], timeout_s: float | None = None
) -> asyncio.Future[Prediction]:
    return scheduler.enqueue(feeds, [], timeout_s, time.perf_counter_ns())


async def test_requests_queued_together_run_as_one_batch_and_split_back(
    scheduler: ModelScheduler,
) -> None:
    futures = [queue(scheduler, rows(1)), queue(scheduler, rows(2, 3)), queue(scheduler, rows(4))]
    answers = await asyncio.gather(*futures)
    assert [a.timing.batch_size for a in answers] == [3, 3, 3]  # requests in the run
    firsts = [dict(a.outputs)["y"][:, 0].tolist() for a in answers]
    assert firsts == [[1.0], [2.0, 3.0], [4.0]]  # each gets its own rows back
    assert scheduler.model.stats.to_proto("m", "1").execution_count == 1


async def test_different_shapes_never_share_a_run(scheduler: ModelScheduler) -> None:
    other = {"x": np.ones((1, 4), np.float64)}  # same name, another dtype: another merge key
    futures = [queue(scheduler, rows(1)), queue(scheduler, other), queue(scheduler, rows(2))]
    results = await asyncio.gather(*futures, return_exceptions=True)
    sizes = [r.timing.batch_size for r in results if not isinstance(r, BaseException)]
    assert sizes.count(2) == 2  # the two float32 requests ran together


async def test_an_expired_or_abandoned_request_is_never_computed(
    scheduler: ModelScheduler,
) -> None:
    expired = queue(scheduler, rows(1), timeout_s=0.0)
    abandoned = queue(scheduler, rows(2))
    abandoned.cancel()
    kept = queue(scheduler, rows(3))
    with pytest.raises(DeadlineExceededError):
        await expired
    assert (await kept).timing.batch_size == 1  # ran alone: the other two never joined it
    assert scheduler.model.stats.to_proto("m", "1").execution_count == 1


async def test_a_full_queue_refuses_at_once(scheduler: ModelScheduler) -> None:
    futures = [queue(scheduler, rows(n)) for n in range(4)]  # max_queue_size = 4
    with pytest.raises(OverloadedError, match=r"queue"):
        queue(scheduler, rows(9))
    await asyncio.gather(*futures)
    assert (await queue(scheduler, rows(9))).timing.batch_size == 1  # room again
