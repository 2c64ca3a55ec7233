"""What the latency benchmarks share: percentiles, GC pauses, and moto + deadline on loopback."""

from __future__ import annotations

import asyncio
import gc
import logging
import math
import os
import time
from collections.abc import Callable, Coroutine, Sequence
from typing import Any


class GcPauses:
    """Full (generation 2) collections: moto, the fakes and the bot share this process's heap."""

    def __init__(self) -> None:
        self.pauses: list[float] = []
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if info["generation"] != 2:
            return
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.pauses.append(time.perf_counter() - self._started)


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile: p99 of 50 values is the largest."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def summary(values: Sequence[float]) -> str:
    ms = [v * 1000 for v in values]
    return (
        f"n {len(ms)}  p50 {percentile(ms, 50):.1f}  p95 {percentile(ms, 95):.1f}  "
        f"p99 {percentile(ms, 99):.1f}  max {max(ms):.1f}  (ms)"
    )


def report_target(p99: float, target: float) -> str:
    verdict = "met" if p99 < target else "NOT met"
    return f"target p99 < {target * 1000:.0f} ms: {verdict} (p99 {p99 * 1000:.1f} ms)"


def run_on_loopback(
    run: Callable[[], Coroutine[Any, Any, None]], *, region: str, deadline: float
) -> int:
    """Start moto on loopback with test credentials, run `run` within `deadline`, report.

    Returns the exit status: 1 when the deadline passed or a bounded wait failed.
    """
    from standins.moto_server import MotoServer  # after the caller fixed sys.path

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("werkzeug", "botocore", "moto"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_CONFIG_FILE"):
        os.environ.pop(name, None)
    moto = MotoServer()
    os.environ.update(
        {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": region,
            "AWS_REGION": region,
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
            "AWS_ENDPOINT_URL": moto.start(),
        }
    )
    started = time.monotonic()
    gc_pauses = GcPauses()
    gc.callbacks.append(gc_pauses)
    try:
        asyncio.run(asyncio.wait_for(run(), deadline))
    except TimeoutError as exc:
        print(f"gave up: {str(exc) or f'not done within --deadline {deadline:.0f} s'}")
        return 1
    except (AssertionError, RuntimeError) as exc:
        # FakeSlack.wait_for says what it saw instead when its bounded wait runs out.
        print(f"failed: {exc}")
        return 1
    finally:
        gc.callbacks.remove(gc_pauses)
        moto.stop()
    print()
    # A lone max far above p99 is usually one of these landing inside a measurement.
    longest = max(gc_pauses.pauses, default=0.0) * 1000
    print(f"gc generation-2 pauses {len(gc_pauses.pauses)}  longest {longest:.1f} ms")
    print(f"wall time {time.monotonic() - started:.1f} s")
    return 0
