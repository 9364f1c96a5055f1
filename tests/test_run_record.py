"""The run record: output folder checks, run.json (NaN-safe, atomic) and the two plots."""

import json

import imageio.v3 as iio
import numpy as np
import pytest

from nst_utils import run_record
from nst_utils.errors import ConfigError


def test_prepare_output_dir_creates_folders_and_refuses_unwritable_ones(tmp_path):
    made = run_record.prepare_output_dir(tmp_path / "a" / "b")
    assert made.is_dir() and list(made.iterdir()) == []  # the write check leaves nothing
    blocker = tmp_path / "file.txt"
    blocker.write_text("not a folder")
    for bad in (blocker, blocker / "sub"):
        with pytest.raises(
            ConfigError, match="cannot write to the output folder .* choose another with --output"
        ):
            run_record.prepare_output_dir(bad)


def test_run_json_turns_non_finite_numbers_into_null_and_leaves_no_partial_file(tmp_path):
    path = run_record.write_run_json(
        tmp_path / "run.json",
        {
            "costs": run_record.history_rows([(3.0, 1.0, 2.0), (float("nan"), float("inf"), 1.5)]),
            "where": tmp_path,
            "n": np.int64(4),
            "x": np.float32(0.5),
        },
    )
    data = json.loads(path.read_text())
    assert data["costs"] == [
        {"iteration": 0, "total": 3.0, "content": 1.0, "style": 2.0},
        {"iteration": 1, "total": None, "content": None, "style": 1.5},
    ]
    assert data["where"] == str(tmp_path) and data["n"] == 4 and data["x"] == 0.5
    assert [p.name for p in tmp_path.iterdir()] == ["run.json"]


def test_library_versions_name_the_libraries_of_a_run():
    import numpy
    import tensorflow

    versions = run_record.library_versions()
    assert (
        versions["tensorflow"] == tensorflow.__version__ and versions["numpy"] == numpy.__version__
    )
    assert {"python", "nst_utils", "scipy", "pillow", "matplotlib", "imageio"} <= set(versions)


def test_plots_are_png_images_sized_by_their_content(tmp_path, rng):
    history = [(10.0 / (i + 1), 1.0 / (i + 1), 0.1) for i in range(7)] + [(1.0, 0.0, 0.05)]
    costs = iio.imread(run_record.plot_costs(tmp_path / "costs.png", history))
    assert costs.shape[:2] == (450, 700)
    empty = iio.imread(run_record.plot_costs(tmp_path / "empty.png", []))  # stopped at once
    assert empty.shape[:2] == (450, 700)
    tile = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    one_row = iio.imread(run_record.plot_progress(tmp_path / "p1.png", [("a", tile)] * 3))
    two_rows = iio.imread(
        run_record.plot_progress(tmp_path / "p2.png", [("a", tile)] * 8, columns=4)
    )
    assert one_row.shape[1] == 3 * 240 and two_rows.shape[1] == 4 * 240
    assert two_rows.shape[0] > 1.8 * one_row.shape[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "costs.png",
        "empty.png",
        "p1.png",
        "p2.png",
    ]


def test_the_run_folders_file_names_are_written_once_in_the_package():
    """Every module takes the names of a run's files from run_record: no other module writes one
    as a string of its code (docstrings aside)."""
    import ast
    from pathlib import Path

    names = {*run_record.RUN_FILES, run_record.LOCK_FILE, run_record.WRITE_CHECK_PREFIX}
    package = Path(run_record.__file__).parent
    found = []
    for path in sorted(package.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docstrings = {
            id(node.body[0].value)
            for node in ast.walk(tree)
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef))
            and node.body
            and isinstance(node.body[0], ast.Expr)
        }
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Constant)
                and node.value in names
                and id(node) not in docstrings
            ):
                found.append((path.relative_to(package).as_posix(), node.value))
    assert sorted(found) == sorted(("run_record.py", name) for name in names)
    assert run_record.snapshot_name(7) == "7.png" and run_record.is_snapshot("7.png")
    assert not any(map(run_record.is_snapshot, ("7.jpg", "x7.png", "costs.png", "7")))
