"""`/status`: the project lead's page, HTML with server-drawn plots; `/metrics` is its JSON form.

A page is built from the project's state alone (figures of every round since the first, the last
monitoring, the lanes), so it costs no Label Studio call. Pages are cached until the state changes.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache

from flask import Blueprint, Response, url_for
from werkzeug.exceptions import NotFound

from backend.server.downloads import export_working
from backend.server.metrics import autocoded_of, exports_view, validation_view
from backend.server.plots import Point, interval_chart, line_chart
from backend.server.requests import project_id
from backend.server.services import services
from backend.storage.atomic import write_identity
from backend.storage.exports import ExportStore
from backend.storage.state import ProjectState
from backend.storage.validation import ValidationSample, ValidationStore

bp = Blueprint("status", __name__)
CACHED_PAGES = 32


@cache
def _templates():
    from jinja2 import Environment, PackageLoader, select_autoescape

    return Environment(loader=PackageLoader("backend.resources", "templates"), autoescape=select_autoescape())


class PageCache:
    """Rendered pages by project, valid while the state's `updated_at` and the pending work stay."""

    def __init__(self, size: int = CACHED_PAGES):
        self.size, self._pages, self._lock = size, OrderedDict(), threading.Lock()

    def get(self, key: tuple) -> str | None:
        with self._lock:
            page = self._pages.get(key)
            if page is not None:
                self._pages.move_to_end(key)
            return page

    def put(self, key: tuple, page: str) -> None:
        with self._lock:
            self._pages[key] = page
            while len(self._pages) > self.size:
                self._pages.popitem(last=False)


PAGES = PageCache()


def eta_seconds(done: int, total: int, started_at: str, moment: datetime | None = None) -> float | None:
    """Seconds left at the pace so far (None before the first step is done)."""
    if done <= 0 or done >= total:
        return None
    elapsed = ((moment or datetime.now(UTC)) - datetime.fromisoformat(started_at)).total_seconds()
    return max(elapsed, 0.0) / done * (total - done)


def one_per_count(points: Iterable[Point]) -> list[Point]:
    """One point per labeled count, the last round's (rounds in order), by count: two rounds at one
    count (a body round after a head round, say) never draw a vertical jump."""
    return sorted({x: y for x, y in points}.items())


def named(code: str, names: Mapping[str, str]) -> str:
    """A code as coders see it in the form, with its id beside ("Physical health (physical_health)");
    the id alone where the form shows the id itself or the state holds no names (written before)."""
    shown = names.get(code)
    return f"{shown} ({code})" if shown and shown != code else code


def plots(state: ProjectState) -> dict[str, str]:
    """The charts over rounds (x: labeled segments), one SVG each; none before the first round."""
    figures = state.figures
    if not figures:
        return {}
    codes = list(dict.fromkeys(code for point in figures for code in point.label_counts))
    names = {code: named(code, state.code_names) for code in codes}
    counts = {names[c]: one_per_count((p.labeled, p.label_counts.get(c)) for p in figures) for c in codes}
    charts = {"counts": line_chart(counts, xlabel="labeled segments", ylabel="positives", counts=True)}
    if any(p.f1 for p in figures):
        f1 = {names[c]: one_per_count((p.labeled, p.f1.get(c)) for p in figures) for c in codes}
        f1["macro"] = one_per_count((p.labeled, p.macro_f1) for p in figures)
        charts["f1"] = line_chart(f1, xlabel="labeled segments", ylabel="F1 (cross-validated)", ylim=(0, 1))
    changed = [(p.labeled, p.changed_share) for p in figures if p.changed_share is not None]
    if changed:  # a round without the signal (the first; no ranked pool to compare) is left out
        threshold = services().settings.loop.stopping_change_threshold
        charts["stopping"] = line_chart(
            {"changed": one_per_count(changed)},
            xlabel="labeled segments",
            ylabel="share changed",
            threshold=threshold,
        )
    return charts


def validation_plot(view: dict | None, names: Mapping[str, str]) -> str | None:
    """Precision, recall and corpus prevalence (PPI) per code with their intervals; None before any
    validation segment is coded."""
    estimates = (view or {}).get("estimates")
    if not estimates:
        return None

    def whisker(figure: dict):
        return None if figure["estimate"] is None else (figure["estimate"], figure["low"], figure["high"])

    return interval_chart(
        {
            named(code, names): {
                "precision": whisker(figures["precision"]),
                "recall": whisker(figures["recall"]),
                "prevalence (PPI)": whisker(figures["prevalence"]["ppi"]),
            }
            for code, figures in estimates["codes"].items()
        }
    )


@dataclass(frozen=True)
class ProjectFiles:
    """What the page shows besides the state: the validation sample, each format's export (as
    exports_view() gives them) and the codes handed over (as autocoded_of() gives them)."""

    validation: ValidationSample | None = None
    exports: dict = field(default_factory=dict)
    autocoded: dict = field(default_factory=dict)


def page_context(
    project: str, state: ProjectState, pending: list[str], mlflow_ui: str | None, files: ProjectFiles
) -> dict:
    """What the template shows (kept apart from rendering, so it is testable without HTML)."""
    validation = files.validation
    progress = state.progress if state.busy else None
    eta = eta_seconds(progress.done, progress.total, progress.started_at) if progress else None
    runs = [
        (point.version, f"{mlflow_ui}/#/experiments/{point.mlflow_run.replace('/', '/runs/', 1)}")
        for point in reversed(state.figures[-10:])
        if mlflow_ui and point.mlflow_run
    ]
    failed = [record for record in reversed(state.rounds) if record.outcome == "failed"][:5]
    view = validation_view(validation, state.current_version)
    return {
        "project": project,
        "state": state,
        "pending": pending,
        "progress": progress,
        "eta": eta,
        "monitoring": state.monitoring,
        "agreement": state.monitoring.agreement or {},
        "quality": state.monitoring.quality or {},
        "model_agreement": state.monitoring.model_agreement or {},
        "last": state.figures[-1] if state.figures else None,
        "rounds": len(state.figures),
        "runs": runs,
        "failed_rounds": failed,
        "plots": plots(state),
        "name": lambda code: named(code, state.code_names),
        "validation": view,
        "automation_bias": state.monitoring.automation_bias,  # in the state: the cache key's updated_at
        "validation_plot": validation_plot(view, state.code_names),
        "autocoded": files.autocoded,
        **export_context(files.exports),
    }


def export_context(exports: dict) -> dict:
    """The Export section: each format's export (exports_view()), the ETA of those under way, and
    whether the page refreshes itself while one waits or runs."""
    under_way = {fmt: export for fmt, export in exports.items() if export and export["status"] == "running"}
    return {
        "exports": exports,
        "export_eta": {
            fmt: eta_seconds(export["done"], export["total"], export["started_at"])
            for fmt, export in under_way.items()
            if export["total"] and export["started_at"]
        },
        "exporting": any(
            export and export["status"] in ("requested", "running") for export in exports.values()
        ),
    }


def validation_key(sample: ValidationSample | None) -> tuple:
    """What changes the page's validation section: a new sample, its release, new estimates."""
    if sample is None:
        return ()
    return (sample.drawn_at, sample.released_at, sample.estimates and sample.estimates.computed_at)


@bp.get("/status")
def index():
    found = services()
    projects = [(project, found.states(project).read()) for project in found.store.projects()]
    links = {project: url_for("status.project_page", project=project) for project, _ in projects}
    connection = found.label_studio.current()
    html = (
        _templates()
        .get_template("status_index.html")
        .render(projects=projects, links=links, connection=connection)
    )
    return Response(html, mimetype="text/html")


@bp.get("/status/<project>")
def project_page(project: str):
    found = services()
    project = project_id(project)
    if not found.store.layout.project(project).path.is_dir():
        raise NotFound(f"no project {project} on this backend (it has no state yet)")
    state = found.states(project).read()
    pending = [kind.value for kind in found.queue.pending(project)]
    directory = found.store.layout.project(project)
    validation = ValidationStore(directory).read()
    exports = exports_view(ExportStore(directory).read(), export_working(found, project))
    # an `autocode` command or its --undo changes no state: the page follows the file's writes
    files = (validation_key(validation), write_identity(directory.autocoded))
    key = (project, state.updated_at, tuple(pending), state.fast.status.busy, files, json.dumps(exports))
    html = PAGES.get(key)
    if html is None:
        ui = found.settings.server.mlflow_ui()
        shown = ProjectFiles(validation, exports, autocoded_of(directory))
        context = page_context(project, state, pending, ui, shown)
        html = _templates().get_template("status.html").render(**context)
        PAGES.put(key, html)
    return Response(html, mimetype="text/html")
