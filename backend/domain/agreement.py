"""Inter-coder agreement, per code and overall, on the tasks that two or more coders annotated.

Each code is a binary decision per (task, coder): did the coder give the code? Figures:

- percent agreement: for each task, the share of coder pairs that made the same decision,
  averaged over tasks;
- Cohen's kappa (scikit-learn) for every pair of coders, on the tasks both annotated;
- Krippendorff's alpha (the `krippendorff` package, nominal), over all coders, tolerating
  coders who skipped a task.

"Overall" pools every (task, code) decision into one set of units, so frequent and rare codes
count by how often they were decided on. A figure that is undefined (e.g. every coder always
said "no": kappa and alpha divide by zero) is None. Every figure carries the number of tasks
behind it.

The model can be one more coder (`model_agreement`): its answers are out-of-fold decisions (see
learning/quality.py), compared with each human coder on every task both answered, so a lead reads
"the model agrees with A as well as B does", or that it does not for one code.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import combinations

import numpy as np
from sklearn.metrics import cohen_kappa_score

from backend.domain.annotations import CoderAnswer


def decision_array(
    answers_by_task: Mapping[int, Sequence[CoderAnswer]], codes: Sequence[str]
) -> tuple[list[str], np.ndarray]:
    """Coders and their decisions (coders × tasks × codes; 1/0, NaN where a coder did not annotate)."""
    coders = sorted({answer.coder for answers in answers_by_task.values() for answer in answers})
    row = {coder: i for i, coder in enumerate(coders)}
    decisions = np.full((len(coders), len(answers_by_task), len(codes)), np.nan)
    for column, answers in enumerate(answers_by_task.values()):
        for answer in answers:
            decisions[row[answer.coder], column] = [code in answer.codes for code in codes]
    return coders, decisions


def percent_agreement(units: np.ndarray) -> float | None:
    """Mean share of agreeing coder pairs per unit (coders × units, NaN = not coded)."""
    shares = []
    for unit in units.T:
        values = unit[~np.isnan(unit)]
        pairs = len(values) * (len(values) - 1) / 2
        if pairs:
            agreeing = sum(n * (n - 1) / 2 for n in np.unique(values, return_counts=True)[1])
            shares.append(agreeing / pairs)
    return float(np.mean(shares)) if shares else None


def krippendorff_alpha(units: np.ndarray) -> float | None:
    """Nominal alpha; None when undefined (fewer than two values ever used, or nothing pairable)."""
    import krippendorff

    pairable = (~np.isnan(units)).sum(axis=0) >= 2
    if not pairable.any() or len(np.unique(units[:, pairable][~np.isnan(units[:, pairable])])) < 2:
        return None
    return float(krippendorff.alpha(reliability_data=units, level_of_measurement="nominal"))


def pairwise_kappa(coders: Sequence[str], units: np.ndarray) -> dict[str, dict]:
    """Cohen's kappa for every pair of coders on the units both coded ('a | b' → kappa, units)."""
    pairs = {}
    for (i, first), (j, second) in combinations(enumerate(coders), 2):
        both = ~np.isnan(units[i]) & ~np.isnan(units[j])
        if not both.any():
            continue
        kappa = cohen_kappa_score(units[i, both], units[j, both], labels=[0, 1], replace_undefined_by=np.nan)
        pairs[f"{first} | {second}"] = {
            "kappa": None if np.isnan(kappa) else float(kappa),
            "units": int(both.sum()),
        }
    return pairs


def _figures(coders: Sequence[str], units: np.ndarray, tasks: int) -> dict:
    return {
        "tasks": tasks,
        "percent_agreement": percent_agreement(units),
        "krippendorff_alpha": krippendorff_alpha(units),
        "cohen_kappa": pairwise_kappa(coders, units),
    }


def agreement(answers_by_task: Mapping[int, Sequence[CoderAnswer]], codes: Sequence[str]) -> dict:
    """Agreement figures for the tasks with answers from at least two coders."""
    shared = {task: answers for task, answers in answers_by_task.items() if len(answers) >= 2}
    coders, decisions = decision_array(shared, codes)
    tasks = len(shared)
    per_code = {code: _figures(coders, decisions[:, :, j], tasks) for j, code in enumerate(codes)}
    overall = _figures(coders, decisions.reshape(len(coders), tasks * len(codes)), tasks)
    same_codes = [len({answer.codes for answer in answers}) == 1 for answers in shared.values()]
    overall["exact_agreement"] = float(np.mean(same_codes)) if same_codes else None
    return {"coders": coders, "tasks": tasks, "codes": per_code, "overall": overall}


MODEL_CODER = "model"


def model_agreement(
    answers_by_task: Mapping[int, Sequence[CoderAnswer]],
    model_answers: Mapping[int, Sequence[float]],
    codes: Sequence[str],
) -> dict:
    """The model's Cohen's kappa and Krippendorff's alpha with each human coder, per code and overall.

    `model_answers` holds the model's decision per code (1/0, NaN where it has none) for the tasks
    it answered out of fold; a coder is compared on the tasks both answered."""
    tasks = [task for task in answers_by_task if task in model_answers]
    coders, decisions = decision_array({task: answers_by_task[task] for task in tasks}, codes)
    model = np.array([model_answers[task] for task in tasks], dtype=float).reshape(len(tasks), len(codes))
    with_coders = {}
    for i, coder in enumerate(coders):
        pair = np.stack([decisions[i], model])  # (coder, model) × tasks × codes
        answered = ~np.isnan(decisions[i, :, 0])
        with_coders[coder] = {
            "tasks": int(answered.sum()),
            "codes": {code: _pair_figures(pair[:, :, j]) for j, code in enumerate(codes)},
            "overall": _pair_figures(pair.reshape(2, len(tasks) * len(codes))),
        }
    return {"coder": MODEL_CODER, "tasks": len(tasks), "with": with_coders}


def _pair_figures(units: np.ndarray) -> dict:
    """Kappa and alpha of two rows of decisions on the units both made."""
    both = ~np.isnan(units).any(axis=0)
    kappa = pairwise_kappa(["a", "b"], units).get("a | b") or {"kappa": None}
    return {"kappa": kappa["kappa"], "alpha": krippendorff_alpha(units[:, both]), "units": int(both.sum())}


def agreement_table(result: Mapping) -> str:
    """A plain-text table of one agreement result, for the terminal."""
    header = f"{'code':<24} {'tasks':>5} {'agree %':>8} {'alpha':>7}  Cohen's kappa per pair (units)"
    lines = [
        f"coders: {', '.join(result['coders']) or '-'}; tasks coded by two or more: {result['tasks']}",
        header,
        "-" * len(header),
    ]
    rows = [*result["codes"].items(), ("overall (task x code)", result["overall"])]
    for name, figures in rows:
        kappas = "; ".join(
            f"{pair}: {_number(item['kappa'])} ({item['units']})"
            for pair, item in figures["cohen_kappa"].items()
        )
        agree = figures["percent_agreement"]
        lines.append(
            f"{name:<24} {figures['tasks']:>5} {_number(None if agree is None else 100 * agree, 1):>8} "
            f"{_number(figures['krippendorff_alpha']):>7}  {kappas or '-'}"
        )
    exact = result["overall"].get("exact_agreement")
    lines.append(f"tasks with identical code sets: {_number(None if exact is None else 100 * exact, 1)} %")
    return "\n".join(lines)


def model_agreement_table(model: Mapping, human: Mapping) -> str:
    """The model's kappa and alpha with each coder beside the coders' own kappa (mean over their
    pairs), per code and overall, for the terminal."""
    columns = [f"model | {coder}" for coder in model["with"]]
    widths = [max(len(column), 22) for column in columns]
    lines = [
        f"the model as a coder: out-of-fold answers on {model['tasks']} task(s); "
        "Cohen's kappa / Krippendorff's alpha with each coder (units)",
        f"{'code':<24} {'coders kappa':>12}  "
        + "  ".join(column.rjust(width) for column, width in zip(columns, widths, strict=True)),
    ]
    for name in [*human["codes"], "overall"]:
        figures = human["overall"] if name == "overall" else human["codes"][name]
        kappas = [item["kappa"] for item in figures["cohen_kappa"].values() if item["kappa"] is not None]
        cells = [
            f"{_number(item['kappa'])} / {_number(item['alpha'])} ({item['units']})".rjust(width)
            for item, width in zip(
                (
                    pair["overall"] if name == "overall" else pair["codes"][name]
                    for pair in model["with"].values()
                ),
                widths,
                strict=True,
            )
        ]
        label = "overall (task x code)" if name == "overall" else name
        human_kappa = _number(float(np.mean(kappas)) if kappas else None)
        lines.append(f"{label:<24} {human_kappa:>12}  {'  '.join(cells) or '-'}")
    return "\n".join(lines)


def _number(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"
