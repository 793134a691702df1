"""The background lane: fine-tune a SetFit body and embed the pool with it. The fast loop is then
asked for a round, which takes the new body.

From 32 labeled segments (BODY_SELECTION=held_out) a quarter is held out of the fine-tuning, and
the body is kept only if a head on it beats a head on the base body there by more than the held-out
noise, judged across coders when several coded (learning/body_choice.py); otherwise heads go back to
(or stay on) the base body.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from functools import partial

import numpy as np

from backend.domain.agreement import decision_array
from backend.domain.annotations import answers_by_task
from backend.domain.coders import CoderNames
from backend.learning.body_choice import BodyVerdict, CoderTruth, HeldOut, held_out_split, judge_bodies
from backend.learning.devices import resolved_precision
from backend.learning.factories import ModelFactory
from backend.learning.heads import HeadOptions
from backend.learning.options import JudgeOptions
from backend.learning.setfit_model import SetFitCodingModel
from backend.queue.work import WorkKind
from backend.storage.embeddings import EmbeddingCache
from backend.storage.state import BodyChoice, CoderChoice, now
from backend.worker.bodies import Bodies, embeddings_dir
from backend.worker.context import ProjectContext
from backend.worker.jobs.common import VersionSaver, too_few_examples
from backend.worker.labels import ProjectLabels, read_labels
from backend.worker.memory import release_memory

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BodyFineTuning:
    ctx: ProjectContext
    factory: ModelFactory
    saver: VersionSaver
    bodies: Bodies
    head_options: HeadOptions
    names: CoderNames

    def run(self) -> None:
        import torch

        ctx = self.ctx
        torch.set_num_threads(ctx.loop.body_threads)
        labels = read_labels(ctx)
        labeled, codes = labels.labeled, labels.scheme.codes
        if too_few_examples(ctx, labeled):
            return
        split = None
        if ctx.loop.body_selection == "held_out":
            split = held_out_split(labeled.matrix, self.head_options.seed, labeled.task_ids)
        tuned_on = labeled if split is None else labeled.subset(split.train)
        started = time.perf_counter()
        model = self.factory.train(tuned_on.texts, tuned_on.matrix, codes)
        seconds = time.perf_counter() - started
        choice = None
        if split is not None:
            verdict = self.judge(model, labels, split)
            choice = BodyChoice(
                fine_tuned_f1=round(verdict.fine_tuned_f1, 4),
                base_f1=round(verdict.base_f1, 4),
                held_out=verdict.held_out,
                lower=round(verdict.lower, 4),
                across_coders=verdict.across_coders,
                kept=verdict.kept,
                judged_at=now(),
                by_coder={
                    name: CoderChoice(
                        fine_tuned_f1=round(coder.fine_tuned_f1, 4),
                        base_f1=round(coder.base_f1, 4),
                        held_out=coder.held_out,
                    )
                    for name, coder in verdict.by_coder.items()
                },
            )
            if not verdict.kept:
                self.keep_base(choice, len(labeled))
                return
        version = self.saver.save(model, tuned_on, seconds, "body")
        release_memory()
        unlabeled = ctx.pool.refresh().values()
        encoder = self.factory.options.encoder
        precision = resolved_precision(encoder.precision, encoder.device)
        directory = embeddings_dir(ctx.store, ctx.project, version.name, encoder, precision)
        encode = partial(model.embed, precision=precision)
        # the worker's small mmap threshold kept: this lane's peak is the fast lane's memory plus its own
        EmbeddingCache(directory).embed(
            [labels.scheme.text_in(data) for data in unlabeled] + labeled.texts, encode
        )
        release_memory()

        def hand_over(state) -> None:
            state.body.version, state.body.labeled = version.name, len(labeled)
            state.body.seconds, state.encoded_in = round(seconds, 2), precision
            state.body.choice = choice

        ctx.states.update(hand_over)
        ctx.queue.request(ctx.project, WorkKind.TRAIN)  # the fast loop takes the new body

    def judge(self, model: SetFitCodingModel, labels: ProjectLabels, split: HeldOut) -> BodyVerdict:
        """Heads on the fine-tuned and the base body's embeddings, scored on the held-out segments,
        or across coders when several coded enough of them."""
        labeled = labels.labeled
        base = self.bodies.base(labels.scheme.codes).embed(labeled.texts)  # cached since the pool's encoding
        coders = coder_truths(labels, split, self.names, self.ctx.loop.train_coders)
        options = JudgeOptions(self.head_options)
        verdict = judge_bodies(model.embed(labeled.texts), base, labeled.matrix, split, options, coders)
        log.info(  # coders unnamed: the log never carries identities, pseudonyms are in /metrics
            "project %s: fine-tuned body %s: held-out macro-F1 %.3f, base body %.3f (%d held out, "
            "%d coder pair(s)); the gain's one-sided %.0f %% lower bound %.3f",
            self.ctx.project,
            "kept" if verdict.kept else "not kept",
            verdict.fine_tuned_f1,
            verdict.base_f1,
            verdict.held_out,
            verdict.across_coders,
            100 * options.confidence,
            verdict.lower,
        )
        return verdict

    def keep_base(self, choice: BodyChoice, labeled: int) -> None:
        """The fine-tuned body lost: heads go back to the base body (a new round if they were not)."""
        ctx = self.ctx
        previous = ctx.states.read().body.version

        def on_base(state) -> None:
            state.body.version, state.body.labeled, state.body.choice = None, labeled, choice

        ctx.states.update(on_base)
        if previous:
            ctx.queue.request(ctx.project, WorkKind.TRAIN)


def coder_truths(
    labels: ProjectLabels, split: HeldOut, names: CoderNames, train_coders: list[str]
) -> dict[str, CoderTruth]:
    """Each coder's own answers on the labeled tasks, held out or not (coders named as shown, those
    of TRAIN_CODERS when it is set); empty when fewer than two coders coded them."""
    labeled, allowed = labels.labeled, {coder.lower() for coder in train_coders}
    row_of_task: dict[int, int] = {}
    for row in (*split.train, *split.held_out):
        row_of_task.setdefault(labeled.task_ids[row], int(row))
    annotated = [task for task in labels.annotated if task.id in row_of_task]
    answers = {
        task: [answer for answer in task_answers if not allowed or answer.coder in allowed]
        for task, task_answers in answers_by_task(annotated, labels.scheme, labels.emails).items()
    }
    coders, decisions = decision_array(names.answers(answers), labels.scheme.codes)
    if len(coders) < 2:
        return {}
    rows = np.array([row_of_task[task] for task in answers], dtype=np.int64)
    truths = {}
    for coder, coded in zip(coders, decisions, strict=True):
        answered = ~np.isnan(coded[:, 0])
        truths[coder] = CoderTruth(rows[answered], coded[answered].astype(np.int64))
    return truths
