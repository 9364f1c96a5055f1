"""`make-assignment`: what students download, and a Gradescope autograder for the instructor.

OUT/student/ stands alone: the student notebook, the images, `pretrained-model/` and `output/`,
a README, a requirements file, and the few modules of nst_utils the notebook, `check()` and
`fetch-weights` need (an allow-list: no module that holds a graded formula ships; the public
cases' answer key is stored as JSON). OUT/autograder.zip holds the whole package (the reference
stays on the grading side), `setup.sh`, `run_autograder`, a grading-only requirements file and
`assignment.json` (the seed of the hidden cases, drawn afresh for every assignment).
"""

from __future__ import annotations

import json
import secrets
import shutil
import zipfile
from pathlib import Path

from ..config import PROJECT_ROOT, WEIGHTS_FILENAME
from ..errors import NSTError
from ..weights.sources import DEFAULT_FORMAT, FETCH_COMMAND, WEIGHTS_ENV, WEIGHTS_SOURCES
from . import answer_key
from .functions import RECORDS
from .student import SOLVED, student_notebook_text

PACKAGE = Path(__file__).resolve().parents[1]
#: The modules of nst_utils in the students' download: what `from nst_utils import *`, the
#: notebook's other imports, `check()` (model_nn's included) and `fetch-weights` import, and
#: nothing else. None defines a graded function or holds a graded formula.
STUDENT_MODULES = (
    "__init__.py",
    "__main__.py",
    "cli.py",
    "errors.py",
    "config.py",
    "quiet.py",
    "settings.py",
    "options.py",
    "architecture.py",
    "hardware.py",
    "files.py",
    "images.py",
    "vgg.py",
    "training.py",
    "run_record.py",
    "reference.py",
    "weights/__init__.py",
    "weights/cache.py",
    "weights/doctor.py",
    "weights/download.py",
    "weights/load.py",
    "weights/mat.py",
    "weights/sources.py",
    "commands/__init__.py",
    "commands/fetch_weights.py",
    "commands/check_weights.py",
    "grading/catalog.py",
    "grading/blanks.py",
    "grading/extract.py",
    "grading/diagnose.py",
    "grading/selfcheck.py",
    "grading/loop_check.py",
    "grading/sandbox/__init__.py",
    "grading/sandbox/box/__init__.py",
    "grading/sandbox/box/runner.py",
    "grading/sandbox/box/protocol.py",
)
#: The commands of the students' `python -m nst_utils` (the others' modules do not ship).
STUDENT_COMMANDS = ("fetch-weights", "check-weights")
STUDENT_CLI_TAIL = f"""

# The students' download holds only these commands' modules.
COMMANDS = {{name: COMMANDS[name] for name in {STUDENT_COMMANDS!r}}}
"""
STUDENT_GRADING_INIT = '''"""Self-checks for the notebook: `check(fn)` prints the grader's
feedback on the public cases."""

from .catalog import Limits
from .selfcheck import check

__all__ = ["Limits", "check"]
'''

#: Pinned versions, one per package (or per Python range where a release dropped 3.10), for the
#: students' requirements and the autograder's: each resolves on Python 3.10 to 3.13.
PINS = {
    "tensorflow": "==2.21.0",
    "numpy": ("==2.2.6", "==2.4.6"),
    "scipy": ("==1.15.3", "==1.17.1"),
    "imageio": ("==2.38.0", "==2.38.1"),
    "pillow": ("==12.3.0", "==13.0.0"),
    "matplotlib": ("==3.10.9", "==3.11.2"),
    "tqdm": "==4.70.1",
    "xxhash": "==4.1.0",
    "filelock": ("==3.32.7", "==4.2.11"),  # the weights cache's build lock
    "notebook": "==7.6.5",
    "ipykernel": ("==7.3.0", "==7.4.0"),
}
#: What the notebook needs, and Jupyter to open it.
STUDENT_REQUIREMENTS = tuple(PINS)
#: What grading needs: the grader, the sandbox and the graded functions' reference.
GRADING_REQUIREMENTS = ("tensorflow", "numpy")


def requirements_text(packages, title: str) -> str:
    """A pip requirements file of `packages` pinned by PINS, with environment markers where the
    pin differs between Python 3.10 and later."""
    lines = [
        f"# {title}",
        "# Resolves on Python 3.10 to 3.13: python3 -m pip install -r requirements.txt",
    ]
    for name in packages:
        pin = PINS[name]
        if isinstance(pin, str):
            lines.append(f"{name}{pin}")
        else:
            old, new = pin
            lines.append(f'{name}{old}; python_version < "3.11"')
            lines.append(f'{name}{new}; python_version >= "3.11"')
    return "\n".join(lines) + "\n"


#: The notes in the download's empty folders.
FOLDER_NOTES = {
    "pretrained-model": f"""# pretrained-model/

`{WEIGHTS_FILENAME}` (MatConvNet's VGG-19, about 535 MB) goes here: run
`python -m nst_utils fetch-weights` from the folder above (see its README.md), or download
{WEIGHTS_SOURCES[DEFAULT_FORMAT]["url"]} by hand into this folder.
""",
    "output": """# output/

The notebook's `model_nn` saves its pictures here: `<i>.png` every 20 iterations and
`generated_image.jpg` at the end.
""",
}


def student_readme(notebook: str) -> str:
    """The README of the students' download."""
    url = WEIGHTS_SOURCES[DEFAULT_FORMAT]["url"]
    return f"""# Art Generation with Neural Style Transfer

This folder is all you need: the notebook `notebooks/{notebook}`, the images, and
`nst_utils`, the helper package the notebook imports (it holds no solution).

## 1. Set up (Python 3.10 to 3.13)

    python3 -m venv .venv
    .venv/bin/python -m pip install -r requirements.txt

(On Windows: `.venv\\Scripts\\python`.) Run every command below from this folder.

## 2. Get the weights (about 535 MB, once)

    .venv/bin/{FETCH_COMMAND}

downloads MatConvNet's VGG-19, `{WEIGHTS_FILENAME}`, into `pretrained-model/`,
verified by its MD5; run it again to resume a broken download. Or download
{url}
by hand into `pretrained-model/`. A file kept elsewhere: set `{WEIGHTS_ENV}` to its path
before you start Jupyter. `.venv/bin/python -m nst_utils check-weights` says whether the file
can serve.

## 3. Open the notebook

    .venv/bin/jupyter notebook notebooks/{notebook}

(or `jupyter lab`). Fill in the code between `### START CODE HERE ###` and
`### END CODE HERE ###`; the generated pictures land in `output/`.

## What `check()` does

Each exercise is followed by a cell such as `check(compute_content_cost)`. It runs your function
on the test cell's inputs and on more cases, compares with the answers stored in
`nst_utils/grading/public_key.json`, and prints one line: PASS, or what is wrong (the classic
mistakes are named). `check(model_nn)` first makes sure the `J` of section 4 uses alpha = 10
and beta = 40 and that no blank is left as `None`, then lends your loop a tiny network for 21
iterations and compares its images, printed costs and saved files with the package's own loop.
The grader checks the four graded functions the same way, on more cases you do not see.
"""


RUN_AUTOGRADER = """#!/usr/bin/env bash
# Gradescope runs this once per submission: grade /autograder/submission/*.ipynb and write
# /autograder/results/results.json. NST_AUTOGRADER_ROOT moves /autograder and NST_PYTHON names
# another Python (tests); NST_ISOLATION picks the sandbox: auto (the strongest this container
# offers) or none (the submission's code runs unboxed, in Gradescope's own container).
set -u
ROOT="${NST_AUTOGRADER_ROOT:-/autograder}"
PYTHON="${NST_PYTHON:-${NST_VENV:-/opt/nst-venv}/bin/python}"
cd "$ROOT/source" && exec "$PYTHON" -m nst_utils.grading.gradescope --root "$ROOT" \\
  --isolation "${NST_ISOLATION:-auto}"
"""
SETUP = """#!/usr/bin/env bash
# Gradescope runs this once, as root, when the autograder is uploaded: Python with venv from the
# system's packages, then the grading requirements in a venv of their own (no project install),
# outside /autograder: a box without namespaces runs as a user of its own, which must run this
# Python but may not enter /autograder (the answer key, the results).
set -eu
SOURCE="$(cd "$(dirname "$0")" && pwd)"
VENV="${NST_VENV:-/opt/nst-venv}"
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends python3 python3-venv util-linux ca-certificates
python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install --no-cache-dir -r "$SOURCE/requirements.txt"
"""


def _graded_names() -> set:
    return {record.name for record in RECORDS}


def _copy_package(target: Path) -> None:
    """The allow-listed modules of nst_utils into `target`, with the students' grading/__init__
    and cli, and the public cases' answer key as JSON."""
    for relative in STUDENT_MODULES:
        destination = target / relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(PACKAGE / relative, destination)
    with open(target / "cli.py", "a", encoding="utf-8") as cli:
        cli.write(STUDENT_CLI_TAIL)
    grading = target / "grading"
    (grading / "__init__.py").write_text(STUDENT_GRADING_INIT, encoding="utf-8")
    keys = {record.name: answer_key.public_key(record.name) for record in RECORDS}
    (grading / "public_key.json").write_text(answer_key.dumps(keys), encoding="utf-8")


def _student_folder(out: Path, solved: Path) -> Path:
    student = out / "student"
    student.mkdir(parents=True)
    notebooks = student / "notebooks"
    notebooks.mkdir()
    name = SOLVED.name.replace(".ipynb", "_student.ipynb")
    (notebooks / name).write_text(student_notebook_text(solved), encoding="utf-8")
    shutil.copytree(PROJECT_ROOT / "images", student / "images")
    for folder, text in FOLDER_NOTES.items():
        (student / folder).mkdir()
        (student / folder / "README.md").write_text(text, encoding="utf-8")
    (student / "README.md").write_text(student_readme(name), encoding="utf-8")
    (student / "requirements.txt").write_text(
        requirements_text(STUDENT_REQUIREMENTS, "The notebook's requirements, and Jupyter."),
        encoding="utf-8",
    )
    _copy_package(student / "nst_utils")
    return student


def _zip_tree(archive: zipfile.ZipFile, folder: Path, prefix: str) -> None:
    for path in sorted(folder.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            archive.write(path, f"{prefix}/{path.relative_to(folder).as_posix()}")


def _executable(archive: zipfile.ZipFile, name: str, text: str) -> None:
    info = zipfile.ZipInfo(name)
    info.external_attr = 0o755 << 16
    archive.writestr(info, text)


def _autograder(out: Path, hidden_seed: int) -> Path:
    path = out / "autograder.zip"
    settings = {"hidden_seed": hidden_seed, "functions": sorted(_graded_names())}
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        _executable(archive, "setup.sh", SETUP)
        _executable(archive, "run_autograder", RUN_AUTOGRADER)
        archive.writestr("assignment.json", json.dumps(settings, indent=2) + "\n")
        archive.writestr(
            "requirements.txt",
            requirements_text(GRADING_REQUIREMENTS, "What grading needs (no Jupyter, no tests)."),
        )
        _zip_tree(archive, PACKAGE, "nst_utils")
    return path


def make_assignment(out: Path, solved: Path = SOLVED, hidden_seed: int | None = None) -> dict:
    """Write OUT/student/ and OUT/autograder.zip; {'student': path, 'autograder': path}."""
    out = Path(out).expanduser()
    if out.exists() and any(out.iterdir()):
        raise NSTError(f"{out} is not empty; give a new or empty folder for the assignment")
    out.mkdir(parents=True, exist_ok=True)
    seed = secrets.randbelow(2**31) if hidden_seed is None else hidden_seed
    return {"student": _student_folder(out, solved), "autograder": _autograder(out, seed)}
