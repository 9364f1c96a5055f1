"""Ctrl-C and SIGTERM sent to a real `python -m nst_utils generate` process: no traceback at any
moment, a second press quits at once even inside a long iteration, and a stopped run resumes to
the same result as one that was never stopped."""

import json
import os
import signal
import subprocess
import sys
import time

import imageio.v3 as iio
import pytest

from nst_utils import run_record
from nst_utils.cli import main
from nst_utils.state import read_state
from limits import HANG_SECONDS


def start(vgg_mat, out, *options):
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "nst_utils",
            "generate",
            "--weights",
            str(vgg_mat),
            "--log-every",
            "0",
            "--output",
            str(out),
            *options,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=str(out.parent),
    )


def wait_for(path, proc, seconds=HANG_SECONDS):
    deadline = time.monotonic() + seconds
    while not path.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"{path.name} never appeared: {proc.communicate()}")
        time.sleep(0.05)


def finish(proc, seconds=HANG_SECONDS):
    try:
        return proc.communicate(timeout=seconds)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise


def mapped_or_open(pid: int, needle: str) -> bool:
    """Whether process `pid` maps a file (a library, a memory-mapped array) or holds one open
    whose path contains `needle`; False once it has ended."""
    try:
        with open(f"/proc/{pid}/maps", encoding="utf-8", errors="replace") as maps:
            if needle in maps.read():
                return True
        return any(
            needle in os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")
        )
    except OSError:  # ended, or an fd closed while listed
        return False


@pytest.mark.slow
@pytest.mark.skipif(
    not os.path.isdir("/proc/self/fd"), reason="needs Linux's /proc to see the stage"
)
@pytest.mark.parametrize("stage", ["numpy", "tensorflow", "weights"])
def test_ctrl_c_during_start_up_is_one_line_without_a_traceback(stage, vgg_mat, tmp_path):
    # Sent as soon as the process is inside the stage: the package's first imports (numpy's
    # library mapped), TensorFlow's import (its library mapped), the weights' load (their file
    # or cache open or mapped). Waiting for these events, not for a time, holds on any load.
    needle = {
        "numpy": "_multiarray_umath",
        "tensorflow": "libtensorflow_framework",
        "weights": str(vgg_mat.parent),
    }[stage]
    out = tmp_path / "out"
    proc = start(vgg_mat, out, "--width", "64", "--height", "48", "--iterations", "100000")
    while not mapped_or_open(proc.pid, needle):
        if proc.poll() is not None:
            pytest.fail(f"ended before its {stage} stage: {proc.communicate()}")
        time.sleep(0.001)
    proc.send_signal(signal.SIGINT)
    _, stderr = finish(proc)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr, stderr
    if (out / "run.json").exists():
        json.loads((out / "run.json").read_text())  # never half-written


@pytest.mark.slow
def test_a_second_ctrl_c_quits_at_once_inside_a_long_iteration(vgg_mat, tmp_path):
    # 400x300 on the fixture's full-size convolutions: seconds per iteration on 2 cores.
    out = tmp_path / "out"
    proc = start(
        vgg_mat,
        out,
        "--width",
        "400",
        "--height",
        "300",
        "--iterations",
        "1000",
        "--save-every",
        "1",
        "--seed",
        "3",
    )
    wait_for(out / "1.png", proc)
    # One iteration here (snapshot 0 to snapshot 1), under this machine's load now: the bound
    # of "at once" below, which a quit that waits for the iteration's end would not meet.
    iteration = (out / "1.png").stat().st_mtime - (out / "0.png").stat().st_mtime
    while (out / "state.npz").stat().st_mtime < (out / "1.png").stat().st_mtime:
        time.sleep(0.01)  # the state beside snapshot 1 written: the next iteration has begun
    proc.send_signal(signal.SIGINT)
    first = [proc.stderr.readline()]
    while "SIGINT received" not in first[-1]:  # the first stop is taken: the event, not a sleep
        assert first[-1], (proc.wait(), "".join(first))
        first.append(proc.stderr.readline())
    proc.send_signal(signal.SIGINT)
    second = time.monotonic()
    _, stderr = finish(proc)
    quit_after = time.monotonic() - second
    stderr = "".join(first) + stderr
    assert proc.returncode == 130, stderr
    assert "quitting at once" in stderr and "--resume" in stderr
    assert "Traceback" not in stderr, stderr
    # What was saved stays whole: the first snapshot and the optimiser's state.
    assert iio.imread(out / "0.png").shape == (300, 400, 3)
    state = read_state(out / "state.npz")
    assert state["iterations"] >= 1
    assert not [p.name for p in out.iterdir() if "partial" in p.name]
    # run.json says how far the saved state goes, not the "running" it started with.
    record = json.loads((out / "run.json").read_text())
    assert (record["iterations_completed"], record["stopped"], record["signal"]) == (
        state["iterations"],
        "interrupted",
        "SIGINT",
    )
    assert [[row["total"], row["content"], row["style"]] for row in record["costs"]] == state[
        "history"
    ]
    assert record["snapshots"] == state["snapshots"] and record["wall_time_seconds"] > 0
    assert quit_after < iteration / 2, (quit_after, iteration, stderr)


@pytest.mark.slow
def test_a_run_stopped_by_sigterm_resumes_to_the_uninterrupted_result(vgg_mat, tmp_path):
    out, whole = tmp_path / "out", tmp_path / "whole"
    proc = start(
        vgg_mat,
        out,
        "--width",
        "64",
        "--height",
        "48",
        "--iterations",
        "100000",
        "--save-every",
        "1",
        "--seed",
        "5",
        "--no-progress",
    )
    wait_for(out / "1.png", proc)
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = finish(proc)
    assert proc.returncode == 143, stderr
    assert f"--resume {out}" in stdout
    done = json.loads((out / "run.json").read_text())["iterations_completed"]
    assert done >= 2 and read_state(out / "state.npz")["iterations"] == done
    target = str(done + 2)
    # Resumed by the command in a process of its own, as a reader does: TensorFlow runs with
    # eager execution on there (the tests turn it off in-process), and loading the saved
    # optimiser state must still go into the run's own graph.
    again = subprocess.run(
        [sys.executable, "-m", "nst_utils", "generate", "--resume", str(out)]
        + ["--iterations", target, "--no-progress"],
        capture_output=True,
        text=True,
        cwd=str(out.parent),
        timeout=HANG_SECONDS,
    )
    assert again.returncode == 0 and "Traceback" not in again.stderr, again.stderr
    assert (
        main(
            [
                "generate",
                "--weights",
                str(vgg_mat),
                "--width",
                "64",
                "--height",
                "48",
                "--iterations",
                target,
                "--save-every",
                "1",
                "--log-every",
                "0",
                "--seed",
                "5",
                "--no-progress",
                "--output",
                str(whole),
            ]
        )
        == 0
    )
    resumed, reference = (json.loads((d / "run.json").read_text()) for d in (out, whole))
    assert resumed["iterations_completed"] == done + 2 == len(resumed["costs"])
    assert resumed["stopped"] is None
    assert resumed["costs"] == reference["costs"]
    assert resumed["final_costs"] == reference["final_costs"]
    assert resumed["snapshots"] == reference["snapshots"]
    assert (out / "generated_image.jpg").read_bytes() == (
        whole / "generated_image.jpg"
    ).read_bytes()


@pytest.mark.slow
def test_a_coarse_to_fine_run_stopped_by_sigterm_resumes_from_its_scale_and_step(vgg_mat, tmp_path):
    out = tmp_path / "big"
    proc = start(
        vgg_mat,
        out,
        "--width",
        "160",
        "--height",
        "128",
        "--scales",
        "2",
        "--iterations",
        "100000",
        "--save-every",
        "1",
        "--seed",
        "5",
        "--no-progress",
    )
    wait_for(out / "1.png", proc)
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = finish(proc)
    assert proc.returncode == 143, stderr
    assert f"--resume {out}" in stdout and "Traceback" not in stderr
    done = json.loads((out / "run.json").read_text())["iterations_completed"]
    state = read_state(out / "state.npz")
    assert state["iterations"] == done >= 2
    assert (state["big"].scale, state["big"].step) == (0, done)
    assert state["image"].shape == (1, 64, 80, 3)  # the coarse scale's size
    scales = json.loads((out / "run.json").read_text())["scales"]
    assert [s["iterations_done"] for s in scales] == [done, 0]
    assert (
        main(["generate", "--resume", str(out), "--iterations", str(done + 2), "--no-progress"])
        == 0
    )
    run = json.loads((out / "run.json").read_text())
    assert run["iterations_completed"] == done + 2 == len(run["costs"])
    assert run["costs"][:done] == run_record.history_rows(state["history"])
    assert iio.imread(out / "generated_image.jpg").shape == (128, 160, 3)


def test_a_stopped_big_prints_scales_count_the_iterations_its_state_holds():
    from types import SimpleNamespace

    from nst_utils.commands import generate

    stop = SimpleNamespace(signal_number=signal.SIGINT)
    run = generate.RunState(stop, None, time.perf_counter())
    # As painted when the stop came (4 at the coarse scale, 2 at the fine); the state holds 5.
    run.record = {
        "scales": [{"iterations": 4, "iterations_done": 4}, {"iterations": 3, "iterations_done": 2}]
    }
    run._progress(5, [], [], "interrupted")
    assert [s["iterations_done"] for s in run.record["scales"]] == [4, 1]
    assert run.record["iterations_completed"] == 5 and run.record["signal"] == "SIGINT"


@pytest.mark.parametrize("saved", [True, False])
def test_quitting_at_once_points_to_resume_only_when_a_state_was_saved(
    saved, tmp_path, monkeypatch, capsys
):
    from types import SimpleNamespace

    from nst_utils.commands import generate

    if saved:
        (tmp_path / "state.npz").write_bytes(b"")
    exits = []
    monkeypatch.setattr(generate.os, "_exit", exits.append)
    from nst_utils.run_record import LOCK_FILE, FolderLock

    lock = FolderLock()
    lock.take(tmp_path)
    stop = SimpleNamespace(signal_number=signal.SIGINT, exit_code=lambda: 130)
    run = generate.RunState(stop, lock, time.perf_counter())
    run.run_dir = tmp_path  # a folder made, its record not yet written
    run.quit_now()
    assert not (tmp_path / LOCK_FILE).exists()  # released before the process ends
    stderr = capsys.readouterr().err
    assert exits == [130]
    # An unreadable state leaves the record as the run started it: no run.json rewritten.
    assert not (tmp_path / "run.json").exists()
    assert ("--resume" in stderr) == saved
    assert saved or "nothing in" in stderr and "start the run again" in stderr


@pytest.mark.slow
def test_a_run_still_running_keeps_its_folder_from_a_second_process(vgg_mat, tmp_path, capsys):
    # A second --resume, or --overwrite of its folder, mixed the two runs' files and records.
    out = tmp_path / "out"
    proc = start(
        vgg_mat,
        out,
        "--width",
        "64",
        "--height",
        "48",
        "--iterations",
        "100000",
        "--save-every",
        "1",
        "--seed",
        "5",
        "--no-progress",
    )
    try:
        wait_for(out / "1.png", proc)
        capsys.readouterr()
        assert (
            main(
                [
                    "generate",
                    "--weights",
                    str(vgg_mat),
                    "--width",
                    "64",
                    "--height",
                    "48",
                    "--iterations",
                    "1",
                    "--seed",
                    "6",
                    "--no-progress",
                    "--output",
                    str(out),
                    "--overwrite",
                ]
            )
            == 2
        )
        assert "another nst process is writing in" in capsys.readouterr().err
        assert (out / "0.png").exists() and json.loads((out / "run.json").read_text())["seed"] == 5
        assert (
            main(["generate", "--resume", str(out), "--iterations", "100001", "--no-progress"]) == 2
        )
        assert "another nst process is writing in" in capsys.readouterr().err
    finally:
        proc.send_signal(signal.SIGINT)
        _, stderr = finish(proc)
    assert proc.returncode == 130, stderr
    # Once it has stopped, the folder is free: the run resumes.
    done = json.loads((out / "run.json").read_text())["iterations_completed"]
    assert (
        main(["generate", "--resume", str(out), "--iterations", str(done + 1), "--no-progress"])
        == 0
    )


def test_the_start_up_handler_is_handed_back_only_where_it_was_installed():
    # `python -m nst_utils` and `nst` answer Ctrl-C from the package's first line; cli.main
    # gives it back to Python (KeyboardInterrupt). A handler someone else set is left alone.
    import nst_utils

    def mine(number, frame):
        pass

    before = signal.getsignal(signal.SIGINT)
    try:
        signal.signal(signal.SIGINT, nst_utils._interrupted_at_start_up)
        nst_utils.end_start_up()
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
        signal.signal(signal.SIGINT, mine)
        nst_utils.end_start_up()
        assert signal.getsignal(signal.SIGINT) is mine
    finally:
        signal.signal(signal.SIGINT, before)


@pytest.mark.slow
@pytest.mark.parametrize("gap", [0.005, 0.05])
def test_signals_after_the_saved_line_leave_a_finished_run_without_a_traceback(
    gap, vgg_mat, tmp_path
):
    # A Ctrl-C in the 0.7 s after the line killed the process silently (status -2), or
    # printed 'Exception ignored in atexit callback ... KeyboardInterrupt'.
    out = tmp_path / "out"
    proc = start(vgg_mat, out, "--width", "64", "--height", "48", "--iterations", "2")
    for line in proc.stdout:  # the run's last line
        if line.startswith("saved "):
            break
    while proc.poll() is None:  # Ctrl-C, again and again, until the process has ended
        proc.send_signal(signal.SIGINT)
        time.sleep(gap)
    _, stderr = finish(proc)
    assert proc.returncode in (0, 130), stderr
    assert "Traceback" not in stderr and "Exception ignored" not in stderr, stderr
    assert "KeyboardInterrupt" not in stderr, stderr
    record = json.loads((out / "run.json").read_text())
    assert (record["stopped"], record["iterations_completed"]) == (None, 2)
    assert record["final_image"] == "generated_image.jpg"
