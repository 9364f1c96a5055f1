"""Run the exercise cells of notebooks as Jupyter runs them and report what `check()` says.

`python notebook_side.py [--build STUDENT_FOLDER] NOTEBOOK...` prints one JSON object: for each
notebook, the text its test and check cells printed, and the self-check's grade of each graded
function it defines. The cells run in an IPython shell (cell magics and all, each cell kept in
its history, as Jupyter keeps it) with TensorFlow's v2 behaviour off, as in the notebook's
first cell; the cells that load VGG-19 are left out (no exercise needs them). With --build,
nst_utils is the one of the students' download in STUDENT_FOLDER, alone.
"""

import contextlib
import io
import json
import sys

import nbformat
from IPython.core.interactiveshell import InteractiveShell

#: The notebook's own imports, without the plotting and the model.
SETUP = """
import numpy as np
import tensorflow.compat.v1 as tf
tf.disable_v2_behavior()
np.set_printoptions(legacy="1.13")
from nst_utils.reference import legacy_random_normal
from nst_utils.grading import check
"""
GRADED = ("compute_content_cost", "gram_matrix", "compute_layer_style_cost", "total_cost")
LAST_CELL = "check(total_cost)"


def run_notebook(shell, path) -> dict:
    from nst_utils.grading.selfcheck import self_grade

    shell.reset()
    shell.run_cell(SETUP)
    notebook = nbformat.read(path, as_version=4)
    code = [c.source for c in notebook.cells if c.cell_type == "code"][1:]  # the imports: SETUP
    printed = io.StringIO()
    for source in code:
        if "load_vgg_model" in source:
            continue
        with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(io.StringIO()):
            shell.run_cell(source, store_history=True)
        if source.strip() == LAST_CELL:
            break
    grades = {}
    for name in GRADED:
        fn = shell.user_ns.get(name)
        if callable(fn):
            grade, note = self_grade(fn)
            grades[name] = {
                "passed": grade.passed,
                "points": grade.points,
                "diagnosis": grade.diagnosis,
                "feedback": grade.feedback,
                "line": grade.line() + note,
            }
    return {"printed": printed.getvalue(), "grades": grades}


def main(paths) -> None:
    from traitlets.config import Config

    if paths[:1] == ["--build"]:  # the download's package, not the repository's (editable) one
        build, paths = paths[1], paths[2:]
        sys.meta_path[:] = [
            m for m in sys.meta_path if "Editable" not in getattr(m, "__name__", "")
        ]
        sys.path.insert(0, build)
        import nst_utils

        assert nst_utils.__file__.startswith(build), nst_utils.__file__
    config = Config()
    config.HistoryManager.hist_file = ":memory:"
    shell = InteractiveShell.instance(config=config)
    print(json.dumps({path: run_notebook(shell, path) for path in paths}))


if __name__ == "__main__":
    main(sys.argv[1:])
