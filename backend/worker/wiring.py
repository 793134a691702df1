"""Building a project's jobs and their collaborators: the one place that knows what each job needs."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from backend.config import Settings
from backend.domain.coders import shown_settings
from backend.learning.factories import ModelFactory
from backend.queue.interface import WorkQueue
from backend.queue.registry import LaneRegistry
from backend.queue.work import Lane, WorkKind
from backend.storage.inbox import Inbox
from backend.storage.lexicon import LexiconStore
from backend.storage.secrets import coder_names
from backend.storage.state import StateStore
from backend.storage.versions import ModelStore
from backend.studio.client import StudioAPI, StudioError
from backend.tracking.project import ProjectTracker
from backend.tracking.runs import tracking_uri
from backend.worker.bodies import Bodies
from backend.worker.body_policy import BodyPolicy
from backend.worker.context import ProjectContext
from backend.worker.jobs import Job
from backend.worker.jobs.body import BodyFineTuning
from backend.worker.jobs.common import RoundSteps, VersionSaver
from backend.worker.jobs.embed import PoolPreEncoding
from backend.worker.jobs.export import ProjectExports
from backend.worker.jobs.full import ModelFitter
from backend.worker.jobs.head import HeadFitter
from backend.worker.jobs.imports import ImportedTasks
from backend.worker.jobs.training import TrainingRound
from backend.worker.labels import FullReads, KeptLabels, LabelFeed
from backend.worker.monitoring import Monitor
from backend.worker.pool_features import PoolFeaturesKeeper
from backend.worker.publish import Publisher
from backend.worker.ranking import ranker_of
from backend.worker.recorder import Recorder
from backend.worker.validation import Validator

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

    def at_work(self, kind: WorkKind) -> None:
        """Show the lane at work before its request is taken (`run` marks it again, with its start)."""
        self.registry.started(self.project, kind)

    def when_idle(self) -> None:
        if self.on_idle is not None:
            self.on_idle.when_idle()


def project_work(
    project: str,
    settings: Settings,
    studio: StudioAPI,
    queue: WorkQueue,
    others_wait: Callable[[], bool] = lambda: False,
    kept: KeptLabels | None = None,
) -> ProjectWork:
    """Every job of one project, wired to one Label Studio client, model store and queue;
    `others_wait` says whether another project's work waits for the worker's slot; `kept` is the
    worker process's labels of the projects it worked at (it moves between them)."""
    project, loop, root = str(project), settings.loop, settings.server.model_dir
    store = ModelStore(root, settings.server.keep_versions)
    directory = store.layout.project(project)
    ctx = ProjectContext(project, studio, StateStore(directory), store, queue, loop)
    registry = LaneRegistry(root)
    head_options, factory = settings.model.head_options(), ModelFactory(settings.model.model_options())
    names = coder_names(root, settings.server.coder_identities)
    shown = shown_settings(settings.public(), names, loop.train_coders)
    tracker = ProjectTracker(tracking_uri(settings.server), project, shown)
    ranker = ranker_of(settings.model)
    saver = VersionSaver(ctx, shown)
    monitor = Monitor(ctx, head_options, tracker, names)
    steps = RoundSteps(monitor, saver, Publisher(ctx, ranker, others_wait), Recorder(ctx, monitor, tracker))
    bodies = Bodies(project, settings.model.encoder_options(), store, ctx.states)
    policy, lexicon = None, None
    if settings.two_speed:
        policy = BodyPolicy(ctx, registry, fine_tunes=settings.model.setfit_max_steps != 0)
        feed = LabelFeed(ctx, Inbox(directory.inbox), kept)
        if head_options.lexical:
            lexicon = LexiconStore(directory.lexicon, settings.model.tfidf_refit_growth)
        fitter = HeadFitter(ctx, head_options, bodies, PoolFeaturesKeeper(lexicon))
        train = TrainingRound(ctx, feed, fitter, steps, policy, Validator(ctx, tracker, monitor))
    else:
        train = TrainingRound(
            ctx, FullReads(ctx), ModelFitter(ctx, factory), steps, None, Validator(ctx, tracker, monitor)
        )
    jobs: dict[WorkKind, Job] = {
        WorkKind.TRAIN: train,
        WorkKind.PREDICT: ImportedTasks(ctx, ranker, settings.model.device, others_wait),
        WorkKind.BODY: BodyFineTuning(ctx, factory, saver, bodies, head_options, names),
        WorkKind.EMBED: PoolPreEncoding(ctx, bodies, tracker, lexicon),
        WorkKind.EXPORT: ProjectExports(ctx),
    }
    return ProjectWork(project, jobs, registry, policy)


def lingering_seconds(settings: Settings, lane: Lane) -> float:
    """How long a lane's worker waits for more work: the fast lane keeps its body loaded."""
    return settings.loop.worker_idle_seconds if lane is Lane.FAST else 0
