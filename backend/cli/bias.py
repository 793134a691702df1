"""`bias`: how often each coder kept the model's suggestion as it was, per code, and how that compares
with blind coders' agreement with the model on the validation sample (backend/worker/bias.py reads,
backend/learning/bias.py computes). Each round measures the same for `/metrics` and `/status`."""

from __future__ import annotations

import argparse
from pathlib import Path

from backend.config import Settings


def share(figure: dict | None) -> str:
    """`0.80 (0.38–0.96, n=5)`, or `–` with nothing to estimate on."""
    if not figure or figure.get("estimate") is None:
        return f"– (n={(figure or {}).get('n', 0)})"
    return f"{figure['estimate']:.2f} ({figure['low']:.2f}–{figure['high']:.2f}, n={figure['n']})"


def bias_table(report: dict) -> str:
    """The report as text tables: the coders, then the codes over all coders."""
    rule = report["flag_rule"]
    unjudged = ", ".join(f"{reason} {n}" for reason, n in sorted(report["unjudged"].items())) or "none"
    lines = [
        f"{report['judged']} annotation(s) started from a suggestion the backend recorded; not judged: "
        f"{unjudged}; on the blind validation sample: {report['blind']}.",
        f"Flagged: a coder who kept at least {rule['unchanged_at_least']:.0%} of whole suggestions unchanged "
        f"over at least {rule['judged_at_least']} judged annotations.",
        "",
        f"{'coder':<24} {'judged':>6}  {'whole suggestion kept (95 % CI)':<34} flag",
    ]
    for coder, figures in report["coders"].items():
        flag = "ACCEPTS NEARLY ALL" if figures["flagged"] else ""
        lines.append(f"{coder:<24} {figures['judged']:>6}  {share(figures['unchanged']):<34} {flag}".rstrip())
    version = report.get("blind_version")
    lines += [
        "",
        "Per code: the decision kept as suggested (all coders) beside blind coders' agreement with the model "
        + (f"(validation sample, version {version})" if version else "(no validation estimates yet)"),
        f"{'code':<24} {'suggested':>9} {'added':>6} {'removed':>7}  {'kept as suggested':<28} blind",
    ]
    for code, figures in report["codes"].items():
        lines.append(
            f"{code:<24} {figures['suggested']:>9} {figures['added']:>6} {figures['removed']:>7}  "
            f"{share(figures['kept']):<28} {share(figures['blind']) if figures['blind'] else '–'}"
        )
    return "\n".join(lines)


def cmd_bias(settings: Settings, args: argparse.Namespace) -> int:
    from backend.cli.exports import export_source, project_number, studio_client
    from backend.storage.layout import ProjectDir
    from backend.storage.secrets import coder_names
    from backend.worker.bias import project_report
    from backend.worker.exporting import read_scheme

    project = project_number(args.project)
    studio = studio_client(settings)
    scheme = read_scheme(export_source(studio, settings, project))  # an unknown project: named, exit 2
    names = coder_names(settings.server.model_dir, "email" if args.coder_names else "pseudonym")
    directory = ProjectDir(Path(settings.server.model_dir), str(project))
    tasks = studio.tasks(project, annotated=True)
    report = project_report(directory, tasks, scheme, studio.user_emails(), names)
    print(f"Automation bias, project {project}")
    print(bias_table(report))
    return 0


def add_commands(commands) -> None:
    bias = commands.add_parser(
        "bias",
        help="how often coders kept the model's suggestion unchanged, per coder and code (automation bias)",
        description="For each coder's annotations that started from a suggestion (Label Studio's "
        "parent_prediction), the suggestion they saw (the backend's log of its prediction writes, at the "
        "time they started), how often they kept it unchanged, and per code how often its decision was "
        "kept, added or removed, with 95 %% Wilson intervals; coders who keep nearly everything are "
        "flagged. Beside it, per code, blind coders' agreement with the model on the validation sample. "
        "Annotations whose suggestion is not known are counted by reason, never guessed.",
    )
    bias.add_argument("--project", required=True, help="the Label Studio project id")
    bias.add_argument(
        "--coder-names",
        action="store_true",
        help="name coders by their Label Studio email instead of a pseudonym (only where the team agreed)",
    )
    bias.set_defaults(handler=cmd_bias)
