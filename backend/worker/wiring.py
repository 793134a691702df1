"""Building a project's jobs and their collaborators: the one place that knows what each job needs."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from backend.config import Settings
from backend.domain.coders import shown_settings
from backend.learning.factories import ModelFactory
from backend.storage.inbox import Inbox
from backend.storage.listing import PoolListing
from backend.storage.secrets import coder_names
from backend.storage.state import Lane, StateStore, WorkKind
from backend.storage.versions import ModelStore
from backend.studio.client import StudioAPI, StudioError
from backend.tracking.project import ProjectTracker
from backend.tracking.runs import tracking_uri
from backend.worker.bodies import Bodies
from backend.worker.body_policy import BodyPolicy
from backend.worker.jobs import Job
from backend.worker.jobs.body import BodyFineTuning
from backend.worker.jobs.common import VersionSaver
from backend.worker.jobs.embed import PoolPreEncoding
from backend.worker.jobs.full import FullRound
from backend.worker.jobs.head import HeadRefit
from backend.worker.jobs.imports import ImportedTasks
from backend.worker.labels import LabelFeed
from backend.worker.monitoring import Monitor
from backend.worker.pool import Pool
from backend.worker.progress import ProgressReporter
from backend.worker.publish import Publisher
from backend.worker.queue import WorkQueue
from backend.worker.registry import LaneRegistry

log = logging.getLogger(__name__)
RETRY_SECONDS = (5.0, 15.0, 45.0)  # when Label Studio is unreachable or fails: about a minute in all


def transient(error: StudioError) -> bool:
    """Whether Label Studio may answer if asked again: no answer at all, or a server error."""
    return error.status is None or error.status >= 500


@dataclass
class ProjectWork:
    """A project's jobs by kind, and what a lingering fast-lane worker does when coders pause."""

    project: str
    jobs: dict[WorkKind, Job]
    registry: LaneRegistry
    on_idle: BodyPolicy | None

    def run(self, kind: WorkKind) -> None:
        """Run one kind of work and record its outcome in the lane's status (a failure never raises).

        When Label Studio cannot be reached or fails (a restart, an overload), the work is tried again
        after RETRY_SECONDS, then twice as long, ...: nothing else would retry it before the next event.
        """
        started, clock = self.registry.started(self.project, kind), time.perf_counter()
        error = None
        for wait in (*RETRY_SECONDS, None):
            try:
                self.jobs[kind].run()
                error = None
                break
            except StudioError as exc:
                error = f"{type(exc).__name__}: {exc}"
                if not transient(exc) or wait is None:
                    log.error("project %s: %s round failed: %s", self.project, kind, exc)
                    break
                log.warning("project %s: %s; trying again in %.0f s", self.project, exc, wait)
                time.sleep(wait)
            except Exception as exc:
                log.exception("project %s: %s round failed", self.project, kind)
                error = f"{type(exc).__name__}: {exc}"
                break
        self.registry.finished(self.project, kind, started, error)
        log.info(
            "project %s: %s round %s in %.1f s",
            self.project,
            kind,
            "failed" if error else "ok",
            time.perf_counter() - clock,
        )

    def when_idle(self) -> None:
        if self.on_idle is not None:
            self.on_idle.when_idle()


def project_work(project: str, settings: Settings, studio: StudioAPI, queue: WorkQueue) -> ProjectWork:
    """Every job of one project, wired to one Label Studio client, model store and queue."""
    project = str(project)
    loop, root = settings.loop, settings.server.model_dir
    store = ModelStore(root, settings.server.keep_versions)
    states = StateStore(store.layout.project(project))
    registry = LaneRegistry(root)
    head, factory = settings.model.head_options(), ModelFactory(settings.model.model_options())
    names = coder_names(root, settings.server.coder_identities)
    shown = shown_settings(settings.public(), names, loop.train_coders)
    tracker = ProjectTracker(tracking_uri(settings.server), project, shown)
    pool = Pool(project, studio, PoolListing(store.layout.project(project)))
    saver = VersionSaver(project, store, states, shown)
    monitor = Monitor(
        project=project, loop=loop, head=head, tracker=tracker, states=states, store=store, names=names
    )
    shared = {"project": project, "studio": studio, "states": states}
    progress = ProgressReporter(project, states)
    publisher = Publisher(
        **shared,
        store=store,
        queue=queue,
        pool=pool,
        monitor=monitor,
        tracker=tracker,
        model_settings=settings.model,
        loop=loop,
        progress=progress,
    )
    policy = None
    bodies = Bodies(project, settings.model.encoder_options(), store, states)
    if settings.two_speed:
        fine_tunes = settings.model.setfit_max_steps != 0
        policy = BodyPolicy(
            project=project, loop=loop, states=states, queue=queue, registry=registry, fine_tunes=fine_tunes
        )
        train: Job = HeadRefit(
            **shared,
            loop=loop,
            head=head,
            bodies=bodies,
            pool=pool,
            saver=saver,
            monitor=monitor,
            publisher=publisher,
            body_policy=policy,
            progress=progress,
            labels=LabelFeed(project, studio, loop, Inbox(store.layout.project(project).inbox)),
            queue=queue,
        )
    else:
        train = FullRound(
            **shared, loop=loop, factory=factory, pool=pool, saver=saver, monitor=monitor, publisher=publisher
        )
    jobs: dict[WorkKind, Job] = {
        WorkKind.TRAIN: train,
        WorkKind.PREDICT: ImportedTasks(**shared, settings=settings.model, loop=loop, store=store, pool=pool),
        WorkKind.BODY: BodyFineTuning(
            **shared,
            loop=loop,
            factory=factory,
            store=store,
            pool=pool,
            saver=saver,
            queue=queue,
            bodies=bodies,
            head=head,
            names=names,
        ),
        WorkKind.EMBED: PoolPreEncoding(
            **shared, bodies=bodies, pool=pool, progress=progress, tracker=tracker, loop=loop, queue=queue
        ),
    }
    return ProjectWork(project, jobs, registry, policy)


def lingering_seconds(settings: Settings, lane: Lane) -> float:
    """How long a lane's worker waits for more work: the fast lane keeps its body loaded."""
    return settings.loop.worker_idle_seconds if lane is Lane.FAST else 0
