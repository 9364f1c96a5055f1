"""The class's grades as a table (terminal), CSV (one row per student) and JSON."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from pathlib import Path

from ..files import write_text_atomically
from .catalog import GRADED_FUNCTIONS

SHORT = {"compute_content_cost": "content", "gram_matrix": "gram",
         "compute_layer_style_cost": "layer_style", "compute_style_cost": "style",
         "total_cost": "total"}


def _functions(rows) -> list:
    names = {name for row in rows for name in row.grades}
    return [name for name in GRADED_FUNCTIONS if name in names]


def table(rows) -> str:
    """One line per student with points per function and in all, then the failures' feedback."""
    functions = _functions(rows)
    header = ["student"] + [SHORT[f] for f in functions] + ["points"]
    body = [[row.student] + [str(row.grades[f].points) for f in functions]
            + [f"{row.points}/{row.max_points}"] for row in rows]
    widths = [max(len(r[i]) for r in [header] + body) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in [header] + body]
    notes = [f"{row.student}: {grade.line()}" for row in rows for grade in row.grades.values()
             if not grade.passed]
    return "\n".join(lines + ([""] + notes if notes else []))


def to_json(rows) -> str:
    return json.dumps([{"student": r.student, "path": r.path, "points": r.points,
                        "max_points": r.max_points, "error": r.error,
                        "functions": {n: dataclasses.asdict(g) for n, g in r.grades.items()}}
                       for r in rows], indent=2)


def to_csv(rows) -> str:
    functions = _functions(rows)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["student", "path", "points", "max_points"]
                    + [f"{SHORT[f]}_points" for f in functions]
                    + [f"{SHORT[f]}_feedback" for f in functions])
    for r in rows:
        writer.writerow([r.student, r.path, r.points, r.max_points]
                        + [r.grades[f].points for f in functions]
                        + [r.grades[f].feedback for f in functions])
    return out.getvalue()


def write_text(path, text: str) -> Path:
    """Write a report file beside its target, then rename it into place."""
    return write_text_atomically(path, text)

