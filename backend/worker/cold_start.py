"""COLD_START=codebook: the queue before the first round, ranked by the codes' definitions.

Once the pool is encoded (worker/jobs/embed.py), the codes' `hint`s are embedded with the same base
body and rank the pool (learning/cold_start.py). The ranking is written to Label Studio as version
`v0-codebook-<time>`, its queue head only, like a round's, under the one name Label Studio serves
(studio/writeback.py); Uncertainty sampling then serves the segments most like each code's
definition, code after code. The first round replaces it as it would replace any version: its head
is written in place, in a band of scores below the codebook's, and the codebook's tasks outside it
stay served after it until coded. A codebook queue that replaces an older one (the same band) renames
the older one's tasks outside its head to `v0-codebook-<time>`. A code is pre-checked only where a
segment is very like its definition (COLD_START_CHECK_SIMILARITY).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import numpy as np

from backend.domain.scheme import CodingScheme
from backend.domain.tasks import Task
from backend.domain.versions import codebook_version_name
from backend.learning.cold_start import codebook_ranking
from backend.storage.state import CodebookStart, ProjectState, now
from backend.studio.predictions import codebook_predictions
from backend.studio.writeback import demote, go_live, write_rest
from backend.worker.bodies import Body
from backend.worker.context import ProjectContext

log = logging.getLogger(__name__)


def codebook_version() -> str:
    return codebook_version_name(datetime.now(UTC))


def write_codebook_start(ctx: ProjectContext, scheme: CodingScheme, body: Body, pool: list[Task]) -> None:
    """Write the codebook's queue when COLD_START=codebook, the form defines codes and no round has
    made a version yet (recorded in the state's `codebook_start` once live)."""
    loop, states = ctx.loop, ctx.states
    definitions = scheme.codebook()
    if loop.cold_start != "codebook" or not definitions or states.read().current_version:
        return
    unlabeled = {task.id for task in pool}
    pool = [task for task in pool if scheme.text_in(task.data).strip()]
    if not pool:
        return
    embeddings = body.embed([scheme.text_in(task.data) for task in pool])  # cached by the encoding
    defined = [code for code in scheme.codes if code in definitions]
    meanings = body.model.embed([definitions[code] for code in defined], precision=body.precision)
    per_code = -(-2 * loop.min_annotations_to_train // len(defined))  # the first rounds' segments
    ranking = codebook_ranking(embeddings, meanings, per_code=per_code)
    similarity = np.full((len(pool), len(scheme.codes)), -1.0)
    similarity[:, [scheme.codes.index(code) for code in defined]] = ranking.similarity
    order = ranking.order
    version = codebook_version()
    predictions = codebook_predictions(
        scheme, similarity[order], loop.cold_start_check_similarity, version, [pool[i].id for i in order]
    )
    checked = int((similarity >= loop.cold_start_check_similarity).sum())

    def modelled() -> bool:
        """Whether a model's round serves, waits or runs: its queue wins (a round at work is about
        to write its own queue head)."""
        state = states.read()
        return bool(state.current_version) or state.fast.status.busy or ctx.round_waits()

    if modelled():
        return
    plan, target = ctx.write_plan, ctx.task_predictions
    live = go_live(target, version, predictions, plan.first)

    def record(state: ProjectState) -> None:
        state.codebook_start = CodebookStart(version=version, tasks=len(pool), checked=checked, live_at=now())

    states.update(record)
    if write_rest(target, live, plan, interrupted=modelled):  # a round at work writes its own queue
        labeled = set(target.ids.live()) - unlabeled
        demote(target, live.head_tasks(plan), labeled, interrupted=modelled)
    log.info(
        "project %s: the codebook's queue (%d definitions, %d tasks, %d codes pre-checked) is %s",
        ctx.project,
        len(defined),
        len(pool),
        checked,
        version,
    )
