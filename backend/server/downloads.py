"""The status page's exports: `POST /status/<project>/export/<format>` asks for one (a job in the
project's background lane writes it: worker/jobs/export.py), `GET` downloads the last finished one.

Behind the same basic auth as every route. A browser sends cached basic-auth credentials with a form
posted from any site, so a POST that a browser says comes from another site is refused (its
`Sec-Fetch-Site`, else its `Origin`); clients that are not browsers send neither, and must
authenticate themselves.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, redirect, request, send_file, url_for
from werkzeug.exceptions import BadRequest, Forbidden, NotFound

from backend.errors import BackendError
from backend.queue.work import Lane, WorkKind
from backend.server.requests import project_id
from backend.server.services import Services, services
from backend.storage.exports import FILES, ExportRecord, ExportRecords, ExportStore
from backend.storage.layout import ProjectDir
from backend.storage.state import LaneStatus

bp = Blueprint("downloads", __name__)
MIMETYPES = {"csv": "text/csv", "qdpx": "application/zip"}
PARTS = {"codebook": (1, "codebook.csv", "text/csv"), "about": (2, "about.md", "text/markdown")}
MAX_FIELD = 200


class UnknownExportError(BackendError):
    """A format or part of an export the status page does not make."""

    http_status = 404


class ExportRunningError(BackendError):
    """An export asked for while the same one is still waiting or under way."""

    http_status = 409


def known_format(fmt: str) -> str:
    if fmt not in FILES:
        raise UnknownExportError(
            f"unknown export format {fmt!r}: the status page exports {' or '.join(FILES)}"
        )
    return fmt


def project_dir(found: Services, project: str) -> ProjectDir:
    directory = found.store.layout.project(project_id(project))
    if not directory.path.is_dir():
        raise NotFound(f"no project {directory.project} on this backend (it has no state yet)")
    return directory


def export_working(found: Services, project: str) -> bool:
    """Whether a worker will take the project's export or is at it (an export whose worker died twice
    is not: sweep.py asks for abandoned work once more only)."""
    if WorkKind.EXPORT in found.queue.pending(project, Lane.BODY):
        return True
    at_export = found.states(project).read().body.status is LaneStatus.EXPORTING
    return at_export and found.queue.busy(project, Lane.BODY)


def refuse_cross_site() -> None:
    """A form posted from another site's page, with the browser's cached credentials, is refused."""
    site, origin = request.headers.get("Sec-Fetch-Site"), request.headers.get("Origin")
    if site is not None:
        foreign = site not in ("same-origin", "none")
    else:
        foreign = origin is not None and urlsplit(origin).netloc != request.host
    if foreign:
        raise Forbidden("an export is started from the backend's own status page, not from another site")


def form_field(name: str) -> str | None:
    value = (request.form.get(name) or "").strip()
    if len(value) > MAX_FIELD:
        raise BadRequest(f"{name}: a task data field's name, at most {MAX_FIELD} characters")
    return value or None


@bp.post("/status/<project>/export/<fmt>")
def start(project: str, fmt: str):
    """Ask for an export; 409 while the same one waits or runs. Answers with the status page."""
    refuse_cross_site()
    found, fmt = services(), known_format(fmt)
    directory = project_dir(found, project)
    working = export_working(found, directory.project)
    layout = {"source_field": form_field("source_field"), "order_field": form_field("order_field")}
    if fmt != "qdpx" and any(layout.values()):
        raise BadRequest(
            "source_field and order_field group a .qdpx project's sources; a table has one row per segment, "
            "with the interview's fields as columns"
        )

    def ask(records: ExportRecords) -> None:
        current = records.formats.get(fmt)
        if current is not None and current.unfinished and working:
            raise ExportRunningError(
                f"a {fmt} export of project {directory.project} is already {current.status.value} "
                f"(since {current.started_at or current.requested_at}); its progress is on the status page"
            )
        finished = current.finished if current is not None else None
        records.formats[fmt] = ExportRecord(finished=finished, **layout)

    ExportStore(directory).update(ask)
    found.queue.request(directory.project, WorkKind.EXPORT)
    return redirect(url_for("status.project_page", project=directory.project) + "#export", code=303)


@bp.get("/status/<project>/export/<fmt>")
def download(project: str, fmt: str):
    """The last finished export of `fmt` (`?part=codebook` or `about`: what is beside a CSV), as a file
    named for the project and the day it was written; 404 when there is none yet."""
    found, fmt = services(), known_format(fmt)
    directory = project_dir(found, project)
    part = request.args.get("part")
    if part is not None and (fmt != "csv" or part not in PARTS):
        raise UnknownExportError(f"part {part!r}: a CSV export has the parts {', '.join(PARTS)}")
    store = ExportStore(directory)
    record = store.read().formats.get(fmt)
    number, suffix, mimetype = PARTS[part] if part else (0, fmt, MIMETYPES[fmt])
    path = store.file(fmt, number)
    if record is None or record.finished is None or path is None:
        raise NotFound(
            f"no {fmt} export of project {directory.project} yet: start one with the Export section of "
            f"/status/{directory.project}"
        )
    name = f"project-{directory.project}-{record.finished.finished_at[:10]}.{suffix}"
    return send_file(path, mimetype=mimetype, as_attachment=True, download_name=name, max_age=0)
