"""The running sandbox: one world, its activity, the webhooks and the delivery engine together.

The web app, the REST API and the CLI all act through :class:`Sandbox`; tests build one with a
fake clock and an in-memory state.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from ..config import SandboxConfig
from .activity import Activity
from .automations import SandboxState, Webhook
from .delivery import Delivery, DeliveryEngine, DeliveryPolicy
from .mail import Mailer, OutboxMailer, SmtpMailer
from .model import Occurrence, SandboxClock
from .scenario import Level, arrivals, level_named, world_for
from .timing import RealClock

log = logging.getLogger(__name__)

MAX_TRIGGER = 1000  # one request fires at most this many events


@dataclass(slots=True)
class Fired:
    """One occurrence the sandbox produced and how many webhooks it went to."""

    occurrence: Occurrence
    deliveries: list[Delivery]


@dataclass(slots=True)
class ScenarioRun:
    """A level being played in the background."""

    level: Level
    speed: float
    started: datetime
    sim_time: datetime
    emitted: int = 0
    task: asyncio.Task[None] | None = field(default=None, repr=False)
    stopping: asyncio.Event = field(default_factory=asyncio.Event, repr=False)

    @property
    def running(self) -> bool:
        """Whether the run is still playing."""
        return self.task is not None and not self.task.done()


def _check_speed(speed: float) -> None:
    if not 0 < speed <= 1_000_000:
        raise ValueError(f"speed must be above 0 and at most 1,000,000, not {speed:g}")


def make_mailer(config: SandboxConfig) -> Mailer:
    """The mailer the configuration asks for: the outbox folder, or an SMTP server."""
    mail = config.mail
    if mail.transport == "smtp":
        return SmtpMailer(
            mail.smtp_host,
            mail.smtp_port,
            sender=mail.sender,
            recipient=mail.admin_email,
            starttls=mail.smtp_starttls,
            user=mail.smtp_user,
            password=mail.smtp_password,
        )
    return OutboxMailer(mail.outbox, sender=mail.sender, recipient=mail.admin_email)


def policy_from(config: SandboxConfig) -> DeliveryPolicy:
    """Zenoti's delivery policy, as configured."""
    return DeliveryPolicy(**config.delivery.model_dump())


class Sandbox:
    """A local Zenoti: a synthetic organization whose events reach the configured webhooks."""

    def __init__(
        self,
        config: SandboxConfig,
        *,
        level: str = "busy-salon",
        clock: SandboxClock | None = None,
        state: SandboxState | None = None,
        mailer: Mailer | None = None,
        public_url: str | None = None,
        play_speed: float | None = None,
    ) -> None:
        """``play_speed``: play the level's activity from :meth:`start` on, at that speed."""
        if play_speed is not None:
            _check_speed(play_speed)
        self.config = config
        self.clock = clock or RealClock()
        self.level = level_named(level)
        self.seed = config.seed
        start = self.clock.now().replace(microsecond=0)
        self.world = world_for(self.level, self.seed, start)
        self.activity = Activity(self.world, seed=self.seed)
        if state is None:
            Path(config.state).parent.mkdir(parents=True, exist_ok=True)
            state = SandboxState(config.state, clock=self.clock)
        self.state = state
        self.mailer = mailer or make_mailer(config)
        self.public_url = (public_url or config.public_url or config.local_url).rstrip("/")
        self.engine = DeliveryEngine(
            state, self.clock, policy_from(config), self.mailer, self.failure_log_url
        )
        self.scenario: ScenarioRun | None = None
        self.play_speed = play_speed
        self._lock = asyncio.Lock()

    def failure_log_url(self, webhook: Webhook) -> str:
        """The page listing a webhook's failed attempts (linked from the deactivation email)."""
        return f"{self.public_url}/webhooks/{webhook.id}/failures"

    # -- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        """Open the delivery engine, and play the scenario asked for at start."""
        await self.engine.start()
        if self.play_speed is not None:
            await self.start_scenario(self.level.name, self.play_speed)

    async def stop(self) -> None:
        """Stop the scenario and every pending delivery; close the state."""
        await self.stop_scenario()
        await self.engine.stop()
        self.state.close()

    # -- events ----------------------------------------------------------------------------------

    def _moment(self) -> datetime:
        return self.clock.now().astimezone(UTC)

    async def emit(self, occurrence: Occurrence) -> Fired:
        """Hand one occurrence to every matching active webhook."""
        return Fired(occurrence, await self.engine.submit(occurrence))

    async def trigger(
        self, event_type: str, *, count: int = 1, center_id: str | None = None
    ) -> list[Fired]:
        """Make ``event_type`` happen ``count`` times now (with the story each one needs).

        Raises ValueError for an unknown type, a bad count or an unknown center.
        """
        if not 1 <= count <= MAX_TRIGGER:
            raise ValueError(f"count must be between 1 and {MAX_TRIGGER}, not {count}")
        if center_id is not None:
            center_id = center_id.strip().lower()
            if center_id not in {c.id for c in self.world.centers}:
                raise ValueError(f"unknown center {center_id!r}; see the world's centers")
        fired: list[Fired] = []
        async with self._lock:
            for _ in range(count):
                for occurrence in self.activity.trigger(event_type, self._moment(), center_id):
                    fired.append(await self.emit(occurrence))
        return fired

    # -- scenario --------------------------------------------------------------------------------

    async def start_scenario(self, level: str, speed: float) -> ScenarioRun:
        """Play ``level``'s activity from now on, ``speed`` times faster than real time."""
        chosen = level_named(level)
        _check_speed(speed)
        await self.stop_scenario()
        now = self._moment()
        run = ScenarioRun(chosen, speed, now, now)
        run.task = asyncio.create_task(self._play(run), name=f"scenario {chosen.name}")
        self.scenario = run
        return run

    async def stop_scenario(self) -> None:
        """Stop the scenario being played, if any, between two business actions.

        An action's events are always all sent: the world never gets ahead of what its
        webhooks were told.
        """
        run = self.scenario
        if run is not None and run.task is not None:
            run.stopping.set()
            # a run that failed has logged why; stopping it must not raise that again
            await asyncio.gather(run.task, return_exceptions=True)

    async def _play(self, run: ScenarioRun) -> None:
        try:
            for moment, center in arrivals(self.world, run.level, self.seed, run.started):
                wait = (moment - run.sim_time).total_seconds() / run.speed
                if not await self._pause(run, wait):
                    return
                run.sim_time = max(run.sim_time, moment)
                async with self._lock:
                    for occurrence in self.activity.step(moment, center.id):
                        await self.emit(occurrence)
                        run.emitted += 1
        except Exception:
            log.exception("the scenario %s stopped", run.level.name)
            raise

    async def _pause(self, run: ScenarioRun, seconds: float) -> bool:
        """Wait ``seconds`` on the sandbox clock; False when the run was stopped meanwhile."""
        if run.stopping.is_set():
            return False
        if seconds <= 0:
            return True
        sleeper = asyncio.ensure_future(self.clock.sleep(seconds))
        stopper = asyncio.ensure_future(run.stopping.wait())
        await asyncio.wait({sleeper, stopper}, return_when=asyncio.FIRST_COMPLETED)
        for waiter in (sleeper, stopper):
            waiter.cancel()
        await asyncio.gather(sleeper, stopper, return_exceptions=True)
        return not run.stopping.is_set()
