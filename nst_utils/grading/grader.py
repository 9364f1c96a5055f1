"""Grade a class: each submission's functions in its own sandbox, the outputs judged here.

The answer keys (reference outputs and the mistakes' values) are computed in this process and
never sent anywhere; a sandbox receives a cell's source and its cases' inputs, and sends back
plain data. A function that calls another graded one (compute_layer_style_cost calls
gram_matrix) gets a stand-in whose values this process computes, so one mistake costs once.

A class run stores each submission's grade in the gradebook (gradebook.py) the moment it is
made, so that a run stopped half-way loses nothing and the next run grades only the rest.
The submissions folder is data: no symbolic link in it is followed.
"""

from __future__ import annotations

import dataclasses
import os
import queue
import sys
import threading
import time
from pathlib import Path
from typing import Iterable, Optional

from ..errors import NSTError
from . import answer_key, catalog, extract, gradebook, report
from .diagnose import FunctionGrade, assess, failed, one_line, sandbox_failure, NOT_IMPLEMENTED
from .functions import BY_NAME, RECORDS
from .sandbox import host
from .blanks import is_untouched_blank

GRADED_FUNCTIONS = tuple(record.name for record in RECORDS)
POINTS = {record.name: record.spec.points for record in RECORDS}
UNISOLATED = "graded without isolation"


@dataclasses.dataclass
class SubmissionGrade:
    """One row of the class table."""

    student: str
    path: str
    grades: dict  # function name -> FunctionGrade
    error: Optional[str] = None
    isolated: bool = True

    @property
    def points(self) -> int:
        return sum(g.points for g in self.grades.values())

    @property
    def max_points(self) -> int:
        return sum(g.max_points for g in self.grades.values())


def _selected(functions) -> tuple:
    functions = tuple(functions or GRADED_FUNCTIONS)
    unknown = [f for f in functions if f not in POINTS]
    if unknown:
        raise NSTError(
            f"unknown graded function(s) {', '.join(unknown)}; choose from "
            f"{', '.join(GRADED_FUNCTIONS)}"
        )
    return functions


def check_isolation(isolation: bool) -> None:
    """Refuse in one line when kernel isolation is wanted but this machine cannot give it."""
    if isolation:
        problem = host.isolation_problem()
        if problem:
            raise host.IsolationUnavailable(
                f"cannot isolate submissions on this machine ({problem}); grade on Linux with "
                f"user namespaces, or pass --no-isolation to grade without it (only for "
                f"trusted work)"
            )


def _task(number, name, source, limits, hidden_seed) -> host.Task:
    key = answer_key.grading_key(name, hidden_seed)
    oracle = {dep: BY_NAME[dep].oracle for dep in key["spec"].dependencies}
    limits_data = dataclasses.asdict(limits)
    return host.Task(f"{number}:{name}", name, source, key["cases"], limits_data, oracle)


def _row(number, submission, results: dict, functions, limits, isolation, hidden_seed):
    """The SubmissionGrade of one submission from its boxes' results ({task id: result})."""
    grades = {}
    for name in functions:
        spec = BY_NAME[name].spec
        if submission.error is not None:
            grades[name] = failed(spec, "unreadable", submission.error)
        elif name not in submission.sources:
            grades[name] = failed(
                spec,
                "missing",
                f"no cell defines {name} ('def {name}(...)') and no cell headed "
                f"'{catalog.GRADED_HEADER} {name}' in the notebook",
            )
        elif is_untouched_blank(submission.sources[name]):
            grades[name] = failed(spec, "not_implemented", NOT_IMPLEMENTED)
        else:
            grades[name] = grade_result(name, results.get(f"{number}:{name}"), limits, hidden_seed)
    _note_dependencies(grades)
    if not isolation:
        for grade in grades.values():
            grade.feedback = f"{grade.feedback} ({UNISOLATED})"
    return SubmissionGrade(
        report.clean_name(submission.student),
        report.clean_name(extract.printable(submission.path)),
        grades,
        submission.error,
        isolation,
    )


def _tasks(number, submission, functions, limits, hidden_seed) -> list:
    """The box tasks of one submission: its graded functions that are there and written."""
    if submission.error is not None:
        return []
    return [
        _task(number, name, submission.sources[name], limits, hidden_seed)
        for name in functions
        if name in submission.sources and not is_untouched_blank(submission.sources[name])
    ]


#: Seconds the waiting thread sleeps at a time, so that a stop request is seen at once.
POLL_SECONDS = 0.2
#: Seconds to wait for the box threads to return once every box was killed.
STOP_SECONDS = 60


def _run_groups(groups: dict, jobs: int, isolation: bool, done, should_stop) -> bool:
    """Run each group of tasks ({number: tasks}, one submission's) in a box of its own, `jobs`
    boxes side by side, calling done(number, results) in this thread as each submission ends.

    False when should_stop() turned true: every box is then ended at once and the submissions
    it interrupted are not reported (they were not graded). On KeyboardInterrupt the boxes are
    ended too, and the exception goes on.
    """
    todo, finished = queue.Queue(), queue.Queue()
    for item in groups.items():
        todo.put(item)
    stopping = threading.Event()

    def work(slot):
        while not stopping.is_set():
            try:
                number, tasks = todo.get_nowait()
            except queue.Empty:
                return
            try:
                results = host.run_submission(tasks, isolation, slot)
            except BaseException as exc:  # noqa: BLE001 - the waiting thread must hear of it
                detail = {"type": type(exc).__name__, "message": str(exc)[:300]}
                results = {t.id: {"id": t.id, "status": "sandbox", "detail": detail} for t in tasks}
            finished.put((number, results, stopping.is_set()))

    threads = [
        threading.Thread(target=work, args=(slot,), name=f"nst-box-{slot}", daemon=True)
        for slot in range(min(jobs, len(groups)))
    ]
    for thread in threads:
        thread.start()
    pending = len(groups)
    try:
        while pending:
            if should_stop():
                _end_boxes(stopping, threads)
                while True:  # what ended before the stop is graded: keep it
                    try:
                        number, results, interrupted = finished.get_nowait()
                    except queue.Empty:
                        return False
                    if not interrupted:
                        done(number, results)
            try:
                number, results, interrupted = finished.get(timeout=POLL_SECONDS)
            except queue.Empty:
                continue
            pending -= 1
            if not interrupted:
                done(number, results)
    except BaseException:
        _end_boxes(stopping, threads)
        raise
    return True


def _end_boxes(stopping: threading.Event, threads: list) -> None:
    """Kill every running box, let no other start, and wait for the threads that ran them."""
    stopping.set()
    host.stop_all()
    try:
        deadline = time.monotonic() + STOP_SECONDS
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
    finally:
        host.allow_boxes()


def _grade_each(
    submissions: dict, functions, limits, jobs, isolation, hidden_seed, on_row, should_stop
) -> bool:
    """Grade {number: Submission}, calling on_row(number, SubmissionGrade) as each is graded
    (at once for those that need no box); False when stopped (see _run_groups)."""
    groups = {}
    for number, submission in submissions.items():
        tasks = _tasks(number, submission, functions, limits, hidden_seed)
        if tasks:
            groups[number] = tasks
        else:
            on_row(number, _row(number, submission, {}, functions, limits, isolation, hidden_seed))
    if not groups:
        return True
    return _run_groups(
        groups,
        jobs,
        isolation,
        lambda number, results: on_row(
            number,
            _row(number, submissions[number], results, functions, limits, isolation, hidden_seed),
        ),
        should_stop,
    )


def _prepare(limits, functions, jobs, isolation):
    check_jobs(jobs)
    check_isolation(isolation)
    return limits or catalog.Limits(), _selected(functions)


def grade_submissions(
    submissions: list,
    limits: catalog.Limits | None = None,
    functions: Iterable[str] | None = None,
    jobs: int = 1,
    isolation: bool = True,
    hidden_seed: int = answer_key.DEFAULT_HIDDEN_SEED,
) -> list:
    """A SubmissionGrade per submission; each submission runs in its own sandbox.

    jobs: how many sandboxes run side by side (each holds TensorFlow, about 650 MB).
    """
    limits, functions = _prepare(limits, functions, jobs, isolation)
    rows = {}
    _grade_each(
        dict(enumerate(submissions)),
        functions,
        limits,
        jobs,
        isolation,
        hidden_seed,
        rows.__setitem__,
        lambda: False,
    )
    return [rows[number] for number in range(len(submissions))]


def _note_dependencies(grades: dict) -> None:
    """Say when a function was graded with the grader's copy of another that the student got
    wrong."""
    for name, grade in grades.items():
        for dep in BY_NAME[name].spec.dependencies:
            own = grades.get(dep)
            if own is not None and not own.passed and grade.passed:
                grade.feedback = (
                    f"passes with the reference {dep}; your {dep} fails: {own.feedback}"
                )
                if grade.public_feedback is not None:
                    grade.public_feedback = (
                        f"passes with the reference {dep}; your {dep} fails: "
                        f"{own.public_feedback or own.feedback}"
                    )


def grade_result(
    name: str, result, limits, hidden_seed: int = answer_key.DEFAULT_HIDDEN_SEED
) -> FunctionGrade:
    """The grade of one sandbox result (untrusted data: anything malformed fails)."""
    spec = BY_NAME[name].spec
    try:
        grade = _grade_result(name, result, limits, hidden_seed)
    except (TypeError, ValueError, KeyError, AttributeError, IndexError, OverflowError):
        return failed(spec, "crashed", "returned no usable result (malformed output)")
    grade.feedback = one_line(grade.feedback)  # it may quote what the submission raised
    if grade.public_feedback is not None:
        grade.public_feedback = one_line(grade.public_feedback)
    return grade


def _grade_result(name, result, limits, hidden_seed) -> FunctionGrade:
    spec = BY_NAME[name].spec
    if not isinstance(result, dict):
        return failed(spec, "crashed", "returned no usable result")
    verdict = sandbox_failure(spec, result, limits)
    if verdict is not None:
        return verdict
    key = answer_key.grading_key(name, hidden_seed)
    error = result.get("definition_error")
    if isinstance(error, dict):
        grade = assess(key, [{"error": error}] * len(key["cases"]), limits)
        if grade.diagnosis == "raises":
            grade.feedback = f"the cell does not run: {error.get('type')}: {error.get('message')}"
            grade.diagnosis = "cell_error"
        return grade
    outputs = result.get("outputs")
    grade = assess(key, outputs, limits)
    if key["public"] < len(key["cases"]) and isinstance(outputs, list):
        public = assess(answer_key.public_part(key), outputs[: key["public"]], limits)
        grade.public_feedback = public.feedback
        if public.passed and not grade.passed:
            grade.public_feedback = (
                "passes the public cases but fails hidden ones (shown when "
                "the grades are published)"
            )
    return grade


#: A notebook's name ends so, in any case (a notebook saved as .IPYNB is graded too).
NOTEBOOK_SUFFIX = ".ipynb"
#: Folders Jupyter keeps its own copies in; never graded.
SKIPPED_FOLDERS = (".ipynb_checkpoints",)


@dataclasses.dataclass
class Entry:
    """A notebook of the class: its student's name, its path, and why it is not read (a
    symbolic link) or None."""

    student: str
    path: Path
    problem: Optional[str] = None


@dataclasses.dataclass
class ClassFolder:
    """What `find_class` found: the notebooks in order, and one-line warnings (files that look
    like notebooks but are not named .ipynb, folders that could not be listed)."""

    entries: list
    warnings: list


def _is_notebook_name(name: str) -> bool:
    return name.lower().endswith(NOTEBOOK_SUFFIX)


def _student(relative: str) -> str:
    """A student's name: the notebook's path inside the folder given, without `.ipynb`."""
    if _is_notebook_name(relative):
        relative = relative[: -len(NOTEBOOK_SUFFIX)]
    return report.clean_name(extract.printable(relative))


def _link_problem(name: str, folder: bool) -> str:
    what = "a symbolic link to a folder" if folder else "a symbolic link"
    where = "the folder" if folder else "the notebook file"
    return (
        f"not graded: {report.clean_name(extract.printable(name))} is {what}, and links are "
        f"not followed; put {where} itself in its place"
    )


def _walk(folder: Path, entries: list, near_misses: list, unlisted: list) -> int:
    """Add the notebooks under `folder` (recursively, no symbolic link followed) to `entries`;
    how many were added."""
    found = []
    for parent, dirs, files in os.walk(folder, onerror=lambda exc: unlisted.append(exc.filename)):
        here = Path(parent)
        for name in list(dirs):
            if name in SKIPPED_FOLDERS:
                dirs.remove(name)
            elif os.path.islink(here / name):
                dirs.remove(name)
                relative = (here / name).relative_to(folder).as_posix()
                found.append(Entry(_student(relative), here / name, _link_problem(relative, True)))
        for name in files:
            relative = (here / name).relative_to(folder).as_posix()
            if _is_notebook_name(name):
                problem = _link_problem(relative, False) if os.path.islink(here / name) else None
                found.append(Entry(_student(relative), here / name, problem))
            elif NOTEBOOK_SUFFIX in name.lower():
                near_misses.append(report.clean_name(extract.printable(relative)))
        dirs.sort()
    found.sort(key=lambda entry: os.fsencode(entry.path))
    entries += found
    return len(found)


def find_class(paths) -> ClassFolder:
    """The notebooks given, or found in the folders given (recursively; `.ipynb_checkpoints`
    skipped), in order. A name ending in .ipynb in any case is a notebook; a symbolic link,
    given or found, is not followed and gets an entry saying why."""
    entries, near_misses, unlisted = [], [], []
    for given in paths:
        given = Path(given).expanduser()
        if os.path.islink(given):
            if not (_is_notebook_name(given.name) or given.is_dir()):
                raise NSTError(f"{given} is not a notebook; give .ipynb files or folders of them")
            problem = _link_problem(str(given), given.is_dir())
            entries.append(Entry(_student(given.name), given, problem))
        elif given.is_dir():
            misses = len(near_misses)
            if not _walk(given, entries, near_misses, unlisted):
                hint = (
                    f" (rename {', '.join(near_misses[misses:][:5])} to .ipynb to grade them)"
                    if len(near_misses) > misses
                    else ""
                )
                raise NSTError(
                    f"no .ipynb notebooks in folder {given}; give notebooks or folders "
                    f"that hold them{hint}"
                )
        elif given.exists():
            if not _is_notebook_name(given.name):
                raise NSTError(f"{given} is not a notebook; give .ipynb files or folders of them")
            entries.append(Entry(_student(given.name), given))
        else:
            raise NSTError(f"no such notebook or folder: {given}")
    warnings = []
    if near_misses:
        warnings.append(
            f"{len(near_misses)} file(s) look like notebooks but are not named .ipynb, so they "
            f"are not graded: {', '.join(near_misses)}; rename them to .ipynb to grade them"
        )
    if unlisted:
        names = ", ".join(report.clean_name(extract.printable(name)) for name in unlisted)
        warnings.append(f"could not list folder(s) {names}: their notebooks are not graded")
    return ClassFolder(entries, warnings)


def _same_path(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.abspath(a) == os.path.abspath(b)


def check_outputs(outputs: dict, given, found: ClassFolder) -> None:
    """Refuse, in one line, an output ({option: path}) that names an input: a notebook of the
    class, a path given, or any file named .ipynb (which the next run would grade). A report
    path ending in .ipynb is, most often, a submission named like an option (`--csv=x.ipynb`)
    that a shell pattern passed to the command line."""
    inputs = [Path(p).expanduser() for p in given] + [entry.path for entry in found.entries]
    for option, output in outputs.items():
        if output is None:
            continue
        output = Path(output).expanduser()
        if _is_notebook_name(output.name):
            raise NSTError(
                f"{option} {output}: an output may not be named .ipynb, as notebooks are the "
                f"input (a submission named like an option? put -- before the paths: "
                f"grade [options] -- PATHS)"
            )
        if any(_same_path(output, item) for item in inputs):
            raise NSTError(
                f"{option} {output} names one of the submissions or folders given; write the "
                f"reports elsewhere"
            )


@dataclasses.dataclass
class ClassRun:
    """A class run's outcome: the rows of the students graded (by this run or before it, from
    the gradebook) in the class's order, how many students the class has, the students this run
    graded, and whether it was stopped before the end."""

    rows: list
    total: int
    graded: list
    stopped: bool = False

    @property
    def remaining(self) -> int:
        return self.total - len(self.rows)


def _stored_row(data, entry: Entry) -> Optional[SubmissionGrade]:
    """A SubmissionGrade from the gradebook's data, named as the class names it now; None if
    the data is not one."""
    try:
        grades = {name: FunctionGrade(**grade) for name, grade in data["grades"].items()}
        return SubmissionGrade(
            entry.student,
            report.clean_name(extract.printable(entry.path)),
            grades,
            data["error"],
            bool(data["isolated"]),
        )
    except (TypeError, KeyError, AttributeError):
        return None


def _storable(row: SubmissionGrade) -> bool:
    """Whether a row is the submission's grade (a sandbox that could not start is not)."""
    return all(grade.diagnosis != "sandbox" for grade in row.grades.values())


def grade_class(
    found: ClassFolder,
    limits: catalog.Limits | None = None,
    functions=None,
    jobs: int = 1,
    isolation: bool = True,
    hidden_seed: int = answer_key.DEFAULT_HIDDEN_SEED,
    book: gradebook.Gradebook | None = None,
    regrade: bool = False,
    should_stop=lambda: False,
    progress: bool = False,
) -> ClassRun:
    """Grade a class; with a gradebook, each grade is stored the moment it is made, a notebook
    already graded (same student, content, grader version and settings) is taken from it unless
    `regrade`, and the rows are read back from it. When should_stop() turns true, every box
    ends at once and the run returns what is graded (ClassRun.stopped)."""
    from tqdm import tqdm

    limits, functions = _prepare(limits, functions, jobs, isolation)
    entries = found.entries
    settings = gradebook.settings_text(
        functions=list(functions),
        limits=dataclasses.asdict(limits),
        hidden_seed=hidden_seed,
        isolation=isolation,
    )
    version = gradebook.grader_version() if book is not None else None
    keys, rows, todo = {}, {}, {}
    for number, entry in enumerate(entries):
        if entry.problem is not None:
            todo[number] = extract.Submission(entry.student, entry.path, {}, entry.problem)
            continue
        digest = None
        if book is not None:
            digest = gradebook.content_hash(entry.path, extract.MAX_NOTEBOOK_BYTES)
        if digest is not None:
            keys[number] = gradebook.Key(entry.student, digest, version, settings)
            row = None if regrade else _stored_row(book.get(keys[number]) or {}, entry)
            if row is not None:
                rows[number] = row
                continue
        todo[number] = extract.read_submission(entry.path, entry.student)
    graded = []
    bar = tqdm(
        total=len(todo),
        disable=not progress,
        file=sys.stderr,
        unit="notebook",
        desc="grading",
        dynamic_ncols=True,
    )

    def on_row(number, row):
        if number in keys and _storable(row):
            book.put(keys[number], row.path, dataclasses.asdict(row))
        rows[number] = row
        graded.append(row.student)
        bar.update(1)

    try:
        complete = _grade_each(
            todo, functions, limits, jobs, isolation, hidden_seed, on_row, should_stop
        )
    finally:
        bar.close()
    for number in keys:  # the reports come from the gradebook
        stored = _stored_row(book.get(keys[number]) or {}, entries[number])
        if stored is not None:
            rows[number] = stored
    return ClassRun([rows[n] for n in sorted(rows)], len(entries), graded, not complete)


def grade_paths(
    paths,
    limits: catalog.Limits | None = None,
    functions=None,
    jobs: int = 1,
    isolation: bool = True,
    hidden_seed: int = answer_key.DEFAULT_HIDDEN_SEED,
) -> list:
    """Grade every notebook given, or found in the folders given (no gradebook)."""
    check_jobs(jobs)
    return grade_class(find_class(paths), limits, functions, jobs, isolation, hidden_seed).rows


def check_jobs(jobs) -> None:
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise NSTError(f"jobs must be a positive whole number, got {jobs!r}")
