"""The class's grades: a table (terminal), CSV, JSON, an LMS gradebook CSV and one feedback file
per student (Markdown).

Names and feedback come from submissions, so every report treats them as hostile text: names
lose their control characters (no newline forges a row), a CSV cell a spreadsheet would run as
a formula is neutralised, and the Markdown escapes whatever would render as HTML, an image or
a link.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import re
import unicodedata
from pathlib import Path

from ..files import write_text_atomically
from .diagnose import one_line
from .functions import BY_NAME, RECORDS


def clean_name(text) -> str:
    """A student's name (or a path) without control or format characters: no newline, carriage
    return, tab, terminal escape or bidirectional override a file name carries reaches a
    report."""
    return "".join(c for c in str(text) if unicodedata.category(c)[0] != "C")


#: A spreadsheet runs a cell that begins with one of these as a formula.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value):
    """`value` as a CSV cell no spreadsheet runs: text that begins with =, +, -, @, a tab or a
    carriage return gets a leading single quote (OWASP's rule against CSV injection)."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def _csv_row(writer, cells) -> None:
    writer.writerow([csv_cell(cell) for cell in cells])


#: Characters written as HTML entities in Markdown: the HTML ones, and those that start a bare
#: link (a scheme's colon, an e-mail's @) in renderers that link URLs by themselves.
_MARKDOWN_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", ":": "&#58;", "@": "&#64;"}
#: Characters that begin Markdown syntax inside a line (emphasis, code, links and images,
#: table cells, strike-through); none of the text escaped starts a line.
_MARKDOWN_ESCAPED = set("\\`*_[]|~")


def markdown_text(text, limit: int = 600) -> str:
    """`text` as one line of Markdown that renders as exactly that text: no HTML, image, link
    or formatting of its own (a dot before a letter is escaped too, so that no domain name
    becomes a link)."""
    text = one_line(text, limit)
    out = []
    for i, c in enumerate(text):
        if c in _MARKDOWN_ENTITIES:
            out.append(_MARKDOWN_ENTITIES[c])
        elif c in _MARKDOWN_ESCAPED or (c == "." and text[i + 1 : i + 2].isalpha()):
            out.append("\\" + c)
        else:
            out.append(c)
    return "".join(out)


def _functions(rows) -> list:
    names = {name for row in rows for name in row.grades}
    return [record.name for record in RECORDS if record.name in names]


def _column(name: str) -> str:
    return BY_NAME[name].spec.column or name


def table(rows) -> str:
    """One line per student with points per function and in all, then the failures' feedback."""
    functions = _functions(rows)
    header = ["student"] + [_column(f) for f in functions] + ["points"]
    body = [
        [one_line(clean_name(row.student), 200)]
        + [str(row.grades[f].points) for f in functions]
        + [f"{row.points}/{row.max_points}"]
        for row in rows
    ]
    widths = [max(len(r[i]) for r in [header] + body) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in [header] + body
    ]
    notes = [
        f"{one_line(clean_name(row.student), 200)}: {grade.line()}"
        for row in rows
        for grade in row.grades.values()
        if not grade.passed
    ]
    unisolated = (
        []
        if all(row.isolated for row in rows)
        else [
            "",
            "WARNING: graded without isolation (--no-isolation): submissions ran as plain "
            "processes",
        ]
    )
    return "\n".join(lines + ([""] + notes if notes else []) + unisolated)


def to_json(rows) -> str:
    return json.dumps(
        [
            {
                "student": clean_name(r.student),
                "path": clean_name(r.path),
                "points": r.points,
                "max_points": r.max_points,
                "error": r.error,
                "isolated": r.isolated,
                "functions": {n: dataclasses.asdict(g) for n, g in r.grades.items()},
            }
            for r in rows
        ],
        indent=2,
    )


def to_csv(rows) -> str:
    """Everything per student: points and feedback per function."""
    functions = _functions(rows)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        ["student", "path", "points", "max_points"]
        + [f"{_column(f)}_points" for f in functions]
        + [f"{_column(f)}_feedback" for f in functions]
    )
    for r in rows:
        _csv_row(
            writer,
            [clean_name(r.student), clean_name(r.path), r.points, r.max_points]
            + [r.grades[f].points for f in functions]
            + [one_line(r.grades[f].feedback) for f in functions],
        )
    return out.getvalue()


def to_gradebook_csv(rows) -> str:
    """What an LMS gradebook imports: one row per student, the total and each function's points,
    with the maximum in each column's header."""
    functions = _functions(rows)
    out = io.StringIO()
    writer = csv.writer(out)
    total = max((r.max_points for r in rows), default=0)
    writer.writerow(
        ["Student", f"Total [{total}]"] + [f"{f} [{BY_NAME[f].spec.points}]" for f in functions]
    )
    for r in rows:
        points = [r.grades[f].points for f in functions]
        _csv_row(writer, [clean_name(r.student), r.points] + points)
    return out.getvalue()


def feedback_markdown(row) -> str:
    """One student's feedback: each function's points and the grader's words."""
    lines = [
        f"# Feedback for {markdown_text(clean_name(row.student), 200)}",
        "",
        f"**Total: {row.points}/{row.max_points}**",
        "",
    ]
    if row.error:
        lines += [f"Your notebook could not be graded: {markdown_text(row.error)}", ""]
    lines += ["| function | points | feedback |", "|---|---|---|"]
    for name, grade in row.grades.items():
        feedback = markdown_text(grade.feedback)
        lines.append(f"| `{name}` | {grade.points}/{grade.max_points} | {feedback} |")
    if not row.isolated:
        lines += ["", "_Graded without isolation._"]
    return "\n".join(lines) + "\n"


def feedback_filename(student: str) -> str:
    """A safe file name for a student's feedback (their path inside the class folder, flattened)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", clean_name(student)).strip("._-") or "student"


def write_feedback(rows, folder) -> list:
    """Write `<student>.md` for every row into `folder`; the paths written."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written, used = [], set()
    for row in rows:
        stem = base = feedback_filename(row.student)
        number = 2
        while stem in used:
            stem, number = f"{base}-{number}", number + 1
        used.add(stem)
        written.append(write_text_atomically(folder / f"{stem}.md", feedback_markdown(row)))
    return written


def write_text(path, text: str) -> Path:
    """Write a report file beside its target, then rename it into place."""
    return write_text_atomically(path, text)
