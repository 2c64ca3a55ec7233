"""Where build updates come from: the SQS queue of EventBridge events, and reconciliation polls."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta

from bot.errors import AwsError, ShipbotError, StoreConflictError
from bot.events import EventParseError, parse_event
from bot.records import BuildRecord, ParkedEvent
from bot.services import Services
from handlers.build_status import BuildTracker
from integrations.queue import EventQueue, QueueMessage
from integrations.slack import SlackPostError

log = logging.getLogger(__name__)

# A message that failed this many deliveries is parked instead of looping forever.
MAX_RECEIVES = 5
MAX_IN_FLIGHT = 20
# Builds we never heard of are announced only if they started this recently, so a first start
# (or a long outage) does not flood the channels with old builds.
UNKNOWN_BUILD_LOOKBACK = timedelta(minutes=30)
_RETRY_AFTER_ERROR_SECONDS = 5.0


class EventConsumer:
    """Long-polls the queue; deletes a message only after it was handled (or parked)."""

    def __init__(self, services: Services, queue: EventQueue, tracker: BuildTracker) -> None:
        self._services = services
        self._queue = queue
        self._tracker = tracker

    async def run_forever(self) -> None:
        """Keep receiving while earlier events are handled, at most MAX_IN_FLIGHT at once, so
        one slow event (a long log, a Slack 429) does not hold up the others."""
        log.info("reading CodeBuild events from %s", self._queue.url)
        slots = asyncio.Semaphore(MAX_IN_FLIGHT)
        in_flight: set[asyncio.Task[None]] = set()

        def done(task: asyncio.Task[None]) -> None:
            in_flight.discard(task)
            slots.release()

        try:
            while True:
                try:
                    messages = await self._queue.receive()
                except AwsError as exc:
                    log.error("cannot receive events: %s", exc.user_message)
                    await asyncio.sleep(_RETRY_AFTER_ERROR_SECONDS)
                    continue
                for message in messages:
                    await slots.acquire()
                    task = asyncio.create_task(self.handle(message))
                    in_flight.add(task)
                    task.add_done_callback(done)
        finally:
            # Unfinished events were not deleted: SQS delivers them again after a restart.
            for task in list(in_flight):
                task.cancel()
            await asyncio.gather(*in_flight, return_exceptions=True)

    async def handle(self, message: QueueMessage) -> None:
        if await self._handle(message):  # True: handled or parked, so delete it
            try:
                await self._queue.delete(message)
            except AwsError as exc:
                # It comes back after the visibility timeout and is handled again, harmlessly.
                log.warning("could not delete event %s: %s", message.message_id, exc.user_message)

    async def _handle(self, message: QueueMessage) -> bool:
        try:
            update = parse_event(message.body)
        except EventParseError as exc:
            await self._park(message, f"unreadable: {exc}")
            return True
        try:
            await self._tracker.apply(update)
        except SlackPostError as exc:
            if exc.permanent:
                # Retrying cannot help until someone fixes the channel; the event is done.
                log.warning("build %s: %s", update.build_id, exc.user_message)
                return True
            return await self._failed(message, exc.user_message)
        except (ShipbotError, StoreConflictError) as exc:
            return await self._failed(message, str(exc))
        except Exception as exc:  # logged with its traceback, retried, then parked
            log.exception("event %s could not be handled", message.message_id)
            return await self._failed(message, f"{type(exc).__name__}: {exc}")
        return True

    async def _failed(self, message: QueueMessage, reason: str) -> bool:
        if message.receive_count >= MAX_RECEIVES:
            await self._park(message, f"failed {message.receive_count} times: {reason}")
            return True
        log.warning(
            "event %s failed (delivery %d), will retry: %s",
            message.message_id,
            message.receive_count,
            reason,
        )
        return False

    async def _park(self, message: QueueMessage, reason: str) -> None:
        log.error("parking event %s: %s", message.message_id, reason)
        now = self._services.clock()
        with contextlib.suppress(StoreConflictError):  # parked already by an earlier delivery
            await self._services.store.create(
                ParkedEvent(
                    message_id=message.message_id,
                    body=message.body[:100_000],
                    reason=reason[:2_000],
                    created_at=now,
                )
            )


class BuildPoller:
    """Reads the builds we know are running, and notices builds started outside Slack."""

    def __init__(self, services: Services, tracker: BuildTracker) -> None:
        self._services = services
        self._tracker = tracker
        self._started = services.clock()

    async def run_forever(self, interval: float) -> None:
        while True:
            try:
                await self.poll_once()
            except (AwsError, StoreConflictError) as exc:
                log.warning("reconciliation poll failed: %s", exc)
            except ShipbotError as exc:
                log.warning("reconciliation poll failed: %s", exc.user_message)
            await asyncio.sleep(interval)

    async def poll_once(self) -> None:
        services = self._services
        known: dict[str, BuildRecord] = {}
        for name in services.environments.environments:
            for record in await services.store.recent(BuildRecord, name, 50):
                known[record.build_id] = record
        wanted = [b for b, r in known.items() if r.status == "IN_PROGRESS"]
        for environment in services.environments.environments.values():
            ids = await services.codebuild.recent_build_ids(environment.build.project)
            wanted.extend(i for i in ids if i not in known)
        if not wanted:
            return
        now = services.clock()
        horizon = min(self._started, now) - UNKNOWN_BUILD_LOOKBACK
        for build in await services.codebuild.get_builds(list(dict.fromkeys(wanted))):
            if build.id not in known and (build.start_time is None or build.start_time < horizon):
                continue
            await self._tracker.apply(build.to_update(now))
