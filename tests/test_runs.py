"""Readers' runs: a folder per run, resuming a stopped run, and messages that name the real cause.

Runs go through nst_utils.cli.main in-process on the fixture weights at 64x48.
"""

import errno
import json
import os
import time

import imageio.v3 as iio
import pytest

from nst_utils import run_record
from nst_utils.cli import main

SIZE = ("--width", "64", "--height", "48")


def generate(vgg_mat, *options):
    try:
        return main(["generate", "--weights", str(vgg_mat), *SIZE, "--no-progress", *options])
    except SystemExit as exit_info:  # argparse's own errors exit through SystemExit
        return exit_info.code


def record(folder):
    return json.loads((folder / "run.json").read_text())


def one_error_line(capsys) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    return lines[0]


@pytest.mark.slow
def test_each_run_gets_its_own_folder_and_latest_points_to_the_newest(
    vgg_mat, tmp_path, monkeypatch, capsys
):
    root = tmp_path / "runs"
    monkeypatch.setenv("NST_OUTPUT_DIR", str(root))
    for seed in ("1", "2"):
        assert generate(vgg_mat, "--iterations", "1", "--save-every", "1", "--seed", seed) == 0
    folders = sorted(p for p in root.iterdir() if not p.is_symlink())
    assert len(folders) == 2
    assert [record(f)["seed"] for f in folders] == [1, 2]
    assert (root / "latest").is_symlink() and (root / "latest").resolve() == folders[1].resolve()
    for folder in folders:  # each holds its own run's files, nothing of the other's
        assert {"0.png", "generated_image.jpg", "run.json"} <= {p.name for p in folder.iterdir()}
        assert record(folder)["settings"]["output"] == str(folder.resolve())
    printed = capsys.readouterr().out
    assert f"run folder {folders[0]}" in printed and f"run folder {folders[1]}" in printed


@pytest.mark.slow
def test_a_non_empty_output_is_refused_unless_overwrite(vgg_mat, tmp_path, capsys):
    out = tmp_path / "out"
    assert (
        generate(
            vgg_mat, "--output", str(out), "--iterations", "3", "--save-every", "1", "--seed", "1"
        )
        == 0
    )
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    capsys.readouterr()
    assert generate(vgg_mat, "--output", str(out), "--iterations", "1") == 2
    line = one_error_line(capsys)
    assert "is not empty" in line and "--overwrite" in line
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    # --overwrite: the earlier run's snapshots 1.png and 2.png do not linger beside the new run.
    (out / "notes.txt").write_text("mine")
    assert (
        generate(
            vgg_mat,
            "--output",
            str(out),
            "--overwrite",
            "--iterations",
            "1",
            "--save-every",
            "1",
            "--seed",
            "2",
        )
        == 0
    )
    names = {p.name for p in out.iterdir()}
    assert "1.png" not in names and "2.png" not in names and "0.png" in names
    assert (out / "notes.txt").read_text() == "mine" and record(out)["seed"] == 2


@pytest.mark.slow
def test_resume_continues_to_the_same_result_bit_for_bit(vgg_mat, tmp_path, capsys):
    whole, part = tmp_path / "whole", tmp_path / "part"
    common = ("--seed", "7", "--save-every", "2", "--log-every", "0")
    assert generate(vgg_mat, "--output", str(whole), "--iterations", "5", *common) == 0
    assert generate(vgg_mat, "--output", str(part), "--iterations", "2", *common) == 0
    assert record(part)["iterations_completed"] == 2
    assert main(["generate", "--resume", str(part), "--iterations", "5", "--no-progress"]) == 0
    assert "resuming after iteration 2" in capsys.readouterr().out
    done, reference = record(part), record(whole)
    assert done["iterations_completed"] == 5 and done["stopped"] is None
    assert done["costs"] == reference["costs"] and done["final_costs"] == reference["final_costs"]
    assert done["snapshots"] == reference["snapshots"] == ["0.png", "2.png", "4.png"]
    assert done["settings"] == reference["settings"] | {"output": str(part.resolve())}
    for name in ("4.png", "generated_image.jpg"):
        assert (part / name).read_bytes() == (whole / name).read_bytes()
    assert len(done["resumed"]) == 1


@pytest.mark.slow
def test_resume_refuses_changed_settings_and_a_finished_run(vgg_mat, tmp_path, capsys):
    out = tmp_path / "out"
    assert generate(vgg_mat, "--output", str(out), "--iterations", "1", "--seed", "3") == 0
    capsys.readouterr()
    assert main(["generate", "--resume", str(out), "--alpha", "5"]) == 2
    line = one_error_line(capsys)
    assert "drop --alpha" in line and "--iterations" in line
    assert main(["generate", "--resume", str(out), "--iterations", "1"]) == 2
    assert "give a larger --iterations" in one_error_line(capsys)
    assert main(["generate", "--resume", str(tmp_path / "nowhere")]) == 2
    assert "holds no readable run.json" in one_error_line(capsys)
    (out / "state.npz").unlink()  # as a run quit before its first snapshot leaves it
    assert main(["generate", "--resume", str(out), "--iterations", "2"]) == 2
    line = one_error_line(capsys)
    assert "holds no saved state" in line and "start the run again" in line


@pytest.mark.slow
def test_a_full_disk_says_so_and_how_much_the_run_needs(vgg_mat, tmp_path, monkeypatch, capsys):
    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(iio, "imwrite", full)
    out = tmp_path / "out"
    assert generate(vgg_mat, "--output", str(out), "--iterations", "2", "--save-every", "1") == 2
    line = one_error_line(capsys)
    assert "the disk is full" in line and "this run needs about" in line and "MB" in line
    assert "choose a folder you can write to" not in line
    assert not [p for p in out.iterdir() if "partial" in p.name]


@pytest.mark.slow
def test_too_little_free_space_is_refused_before_the_run(vgg_mat, tmp_path, monkeypatch, capsys):
    usage = run_record.shutil.disk_usage(tmp_path)
    monkeypatch.setattr(run_record.shutil, "disk_usage", lambda path: usage._replace(free=1000))
    out = tmp_path / "out"
    assert generate(vgg_mat, "--output", str(out), "--iterations", "2") == 2
    line = one_error_line(capsys)
    assert "has 0.0 MB free and this run needs about" in line
    assert not (out / "generated_image.jpg").exists()


def test_the_bytes_a_run_needs_grow_with_its_size_and_snapshots():
    from nst_utils.settings import DEFAULTS

    small = run_record.bytes_needed(DEFAULTS.replace(image_width=64, image_height=48))
    big = run_record.bytes_needed(DEFAULTS.replace(image_width=640, image_height=480))
    fewer = run_record.bytes_needed(
        DEFAULTS.replace(image_width=640, image_height=480, save_every=0)
    )
    # The state (image and Adam's two slots, float32) twice over, at least.
    assert big - small >= 2 * 3 * (640 * 480 - 64 * 48) * 3 * 4
    assert fewer < big


@pytest.mark.slow
@pytest.mark.parametrize(
    "options, says",
    [
        (("--alpha", "1e38", "--beta", "1e38"), "lower --alpha, --beta"),
        (("--style-layers", "conv1_1:1e38"), "the cost overflowed float32"),
    ],
)
def test_a_cost_overflowing_float32_names_the_weights_not_the_learning_rate(
    options, says, vgg_mat, tmp_path, capsys
):
    out = tmp_path / "out"
    assert (
        generate(vgg_mat, "--output", str(out), "--iterations", "3", "--seed", "1", *options) == 2
    )
    line = one_error_line(capsys)
    assert line.startswith("error: the cost became NaN or infinite after 0 iteration")
    assert says in line and "learning-rate" not in line
    assert record(out)["stopped"] == "non-finite" and record(out)["iterations_completed"] == 0


@pytest.mark.slow
@pytest.mark.parametrize(
    "key, value",
    [
        ("style_layers", "conv1_1"),
        ("seed", "x"),
        ("style", None),
        ("content", None),
        ("weights", 5),
        ("style_layers", [["conv1_1", "a"]]),
        ("width", -5),
    ],
)
def test_resume_of_a_run_json_with_damaged_settings_is_one_line(
    key, value, vgg_mat, tmp_path, capsys
):
    out = tmp_path / "out"
    assert generate(vgg_mat, "--output", str(out), "--iterations", "1", "--seed", "3") == 0
    kept = record(out)
    damaged = dict(kept, settings=dict(kept["settings"], **{key: value}))
    (out / "run.json").write_text(json.dumps(damaged))
    capsys.readouterr()
    assert main(["generate", "--resume", str(out), "--iterations", "2", "--no-progress"]) == 2
    line = one_error_line(capsys)
    assert "settings in" in line and "run.json are damaged" in line
    (out / "run.json").write_text(json.dumps(dict(kept, settings="abc")))
    assert main(["generate", "--resume", str(out), "--iterations", "2", "--no-progress"]) == 2
    assert "holds no readable run.json" in one_error_line(capsys)


@pytest.mark.slow
@pytest.mark.parametrize("key", ["weights", "resumed", "wall_time_seconds"])
def test_resume_of_a_run_json_with_a_damaged_field_outside_its_settings_still_resumes(
    key, vgg_mat, tmp_path
):
    out = tmp_path / "out"
    assert generate(vgg_mat, "--output", str(out), "--iterations", "1", "--seed", "3") == 0
    (out / "run.json").write_text(json.dumps(dict(record(out), **{key: "x"})))
    assert main(["generate", "--resume", str(out), "--iterations", "2", "--no-progress"]) == 0
    done = record(out)
    assert done["iterations_completed"] == 2 and done["stopped"] is None
    assert isinstance(done["wall_time_seconds"], float) and len(done["resumed"]) == 1


@pytest.mark.slow
def test_a_disk_that_fills_mid_run_leaves_a_record_of_the_saved_state_that_resumes(
    vgg_mat, tmp_path, monkeypatch, capsys
):
    from nst_utils.state import read_state

    encode, calls = iio.imwrite, []

    def fills_up(*args, **kwargs):  # the fourth snapshot finds the disk full
        calls.append(1)
        if len(calls) == 4:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return encode(*args, **kwargs)

    common = ("--iterations", "8", "--save-every", "1", "--seed", "3", "--log-every", "0")
    whole, out = tmp_path / "whole", tmp_path / "out"
    assert generate(vgg_mat, "--output", str(whole), *common) == 0
    monkeypatch.setattr(iio, "imwrite", fills_up)
    assert generate(vgg_mat, "--output", str(out), *common) == 2
    assert "the disk is full" in one_error_line(capsys)
    saved, kept = read_state(out / "state.npz", arrays=False), record(out)
    assert saved["iterations"] >= 1
    assert (kept["stopped"], kept["iterations_completed"]) == ("disk full", saved["iterations"])
    assert kept["snapshots"] == saved["snapshots"] and len(kept["costs"]) == saved["iterations"]
    monkeypatch.setattr(iio, "imwrite", encode)  # space again
    assert main(["generate", "--resume", str(out), "--no-progress"]) == 0
    assert record(out)["costs"] == record(whole)["costs"]
    assert (out / "generated_image.jpg").read_bytes() == (
        whole / "generated_image.jpg"
    ).read_bytes()


@pytest.mark.slow
def test_overwrite_keeps_the_pictures_of_a_folder_that_holds_no_run(vgg_mat, tmp_path, capsys):
    out = tmp_path / "photos"
    out.mkdir()
    (out / "7.png").write_bytes(b"someone's picture")
    (out / "notes.txt").write_text("mine")
    assert generate(vgg_mat, "--output", str(out), "--overwrite", "--iterations", "1") == 2
    line = one_error_line(capsys)
    assert "holds no earlier run" in line and "7.png" in line
    assert (out / "7.png").read_bytes() == b"someone's picture"
    assert sorted(p.name for p in out.iterdir()) == ["7.png", "notes.txt"]
    (out / "7.png").unlink()  # no file of a run's name: --overwrite reuses the folder
    assert generate(vgg_mat, "--output", str(out), "--overwrite", "--iterations", "1") == 0
    assert (out / "notes.txt").read_text() == "mine" and record(out)["iterations_completed"] == 1


@pytest.mark.slow
def test_ctrl_c_inside_a_librarys_import_at_start_up_ends_before_the_run_folder(
    vgg_mat, tmp_path, monkeypatch, capsys
):
    import importlib

    real = importlib.import_module

    def interrupted(name, *args, **kwargs):
        if name == "tqdm":  # as pybind11 reports a KeyboardInterrupt inside a module's init
            try:
                raise KeyboardInterrupt
            except KeyboardInterrupt as exc:
                raise ImportError("initialization failed") from exc
        return real(name, *args, **kwargs)

    monkeypatch.setattr(importlib, "import_module", interrupted)
    out = tmp_path / "out"
    # It was taken for a missing library: the run went on, and the broken import failed later.
    assert generate(vgg_mat, "--output", str(out), "--iterations", "1") == 130
    assert capsys.readouterr().err.strip() == "interrupted"
    assert not out.exists()


@pytest.mark.slow
def test_ctrl_c_inside_any_import_at_start_up_is_not_a_missing_requirement(
    vgg_mat, tmp_path, monkeypatch, capsys
):
    from nst_utils.weights import load

    def interrupted(*args, **kwargs):
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as exc:
            raise ImportError("initialization failed") from exc

    monkeypatch.setattr(load, "load_for_run", interrupted)
    assert generate(vgg_mat, "--output", str(tmp_path / "out"), "--iterations", "1") == 130
    assert capsys.readouterr().err.strip() == "interrupted"


@pytest.mark.slow
def test_a_second_ctrl_c_while_the_record_is_drawn_brings_run_json_to_the_saved_state(
    vgg_mat, tmp_path, monkeypatch, capsys
):
    from nst_utils.commands import generate as command

    def second_ctrl_c(*args, **kwargs):  # what StopSignals raises on the second signal
        raise KeyboardInterrupt

    class QuitAtOnce(Exception):
        pass

    def exits(code):
        raise QuitAtOnce(code)

    monkeypatch.setattr(run_record, "plot_costs", second_ctrl_c)
    monkeypatch.setattr(command.os, "_exit", exits)
    out = tmp_path / "out"
    # It came after StopSignals had ended: run.json said 'running' with 0 iterations.
    with pytest.raises(QuitAtOnce) as quit_at_once:
        generate(vgg_mat, "--output", str(out), "--iterations", "2", "--save-every", "1")
    assert quit_at_once.value.args == (130,)
    kept = record(out)
    # Every iteration was done: the run is recorded as finished, not as one to resume.
    assert (kept["stopped"], kept["iterations_completed"], len(kept["costs"])) == (None, 2, 2)
    assert kept["signal"] is None and kept["snapshots"] == ["0.png", "1.png"]
    assert kept["final_image"] == "generated_image.jpg" and (out / kept["final_image"]).is_file()
    assert "the painting is done" in capsys.readouterr().err


@pytest.mark.slow
def test_a_ctrl_c_after_the_last_iteration_ends_the_finished_run_as_done(
    vgg_mat, tmp_path, monkeypatch, capsys
):
    import signal

    plot = run_record.plot_costs

    def ctrl_c_then_plot(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGINT)
        return plot(*args, **kwargs)

    monkeypatch.setattr(run_record, "plot_costs", ctrl_c_then_plot)
    out = tmp_path / "out"
    # It exited 130 with a record saying the run was not stopped: every iteration was done.
    assert generate(vgg_mat, "--output", str(out), "--iterations", "2", "--save-every", "1") == 0
    kept = record(out)
    assert (kept["stopped"], kept["signal"], kept["iterations_completed"]) == (None, None, 2)
    assert "SIGINT received" in capsys.readouterr().err


def test_the_advice_for_a_non_finite_resumed_run_points_to_a_new_run():
    # --resume refuses --learning-rate and the cost weights: the advice must not ask for them
    # on the resumed run itself.
    import types

    from nst_utils.commands.generate import _non_finite_advice
    from nst_utils.settings import DEFAULTS

    finite = types.SimpleNamespace(history=[(5.0, 1.0, 1.0)])
    overflowed = types.SimpleNamespace(history=[(1e35, 1.0, 1.0)])
    assert _non_finite_advice(DEFAULTS, finite) == "try a lower --learning-rate"
    assert _non_finite_advice(DEFAULTS, finite, resumed=True) == (
        "try a lower --learning-rate in a new run (--resume keeps the run's settings)"
    )
    advice = _non_finite_advice(DEFAULTS, overflowed, resumed=True)
    assert advice.startswith("the cost overflowed float32 (alpha 10, beta 40")
    assert advice.endswith("--tv-weight in a new run (--resume keeps the run's settings)")


@pytest.mark.slow
def test_a_ctrl_c_while_the_run_folder_is_made_ends_as_a_stopped_run(
    vgg_mat, tmp_path, monkeypatch, capsys
):
    import signal

    write = run_record.write_run_json
    calls = []

    def ctrl_c_then_write(*args, **kwargs):
        if not calls:  # the record as the run starts
            os.kill(os.getpid(), signal.SIGINT)
        calls.append(args)
        return write(*args, **kwargs)

    monkeypatch.setattr(run_record, "write_run_json", ctrl_c_then_write)
    out = tmp_path / "out"
    # The signal came before StopSignals: 'interrupted' at once, run.json left 'running'.
    assert generate(vgg_mat, "--output", str(out), "--iterations", "5", "--save-every", "1") == 130
    kept = record(out)
    assert kept["stopped"] == "interrupted" and kept["signal"] == "SIGINT"
    assert kept["iterations_completed"] < 5 and len(kept["costs"]) == kept["iterations_completed"]
    assert f"--resume {out}" in capsys.readouterr().out


@pytest.mark.slow
def test_a_run_goes_on_unguarded_where_the_file_system_has_no_flock(
    vgg_mat, tmp_path, monkeypatch, capsys
):
    import errno
    import fcntl

    def no_flock(fd, operation):  # NFS without its lock daemon, Lustre without -o flock
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_flock)
    out = tmp_path / "out"
    # Every run there was refused: 'another nst process is writing in ...'.
    assert generate(vgg_mat, "--output", str(out), "--iterations", "2", "--save-every", "1") == 0
    assert "another nst process" not in capsys.readouterr().err
    assert record(out)["iterations_completed"] == 2
    assert not (out / run_record.LOCK_FILE).exists()
    assert main(["generate", "--resume", str(out), "--iterations", "3", "--no-progress"]) == 0
    assert record(out)["iterations_completed"] == 3


@pytest.mark.slow
@pytest.mark.parametrize(
    "resuming, second_in",
    [
        (False, "new_run_dir"),
        (False, "check_free_space"),
        (False, "write_run_json"),
        (True, "check_free_space"),
        (True, "write_run_json"),
    ],
)
def test_a_second_signal_before_the_painting_begins_quits_as_the_first_one_asked(
    resuming, second_in, vgg_mat, tmp_path, monkeypatch, capsys
):
    import signal

    from nst_utils.commands import generate as command

    class QuitAtOnce(Exception):
        pass

    def exits(code):
        raise QuitAtOnce(code)

    out = tmp_path / "out"
    if resuming:  # a finished run of 1 iteration, its record and state on disk
        assert (
            generate(vgg_mat, "--output", str(out), "--iterations", "1", "--save-every", "1") == 0
        )
        before = record(out)
    take, then = run_record.FolderLock.take, getattr(run_record, second_in)

    def sigterm_then_take(self, folder):
        os.kill(os.getpid(), signal.SIGTERM)
        return take(self, folder)

    def sigint_then(*args, **kwargs):
        monkeypatch.setattr(run_record, second_in, then)  # once
        os.kill(os.getpid(), signal.SIGINT)
        return then(*args, **kwargs)

    monkeypatch.setattr(run_record.FolderLock, "take", sigterm_then_take)
    monkeypatch.setattr(run_record, second_in, sigint_then)
    monkeypatch.setattr(command.os, "_exit", exits)
    capsys.readouterr()
    # It ended as 'interrupted', 130 (not the first signal's 143), without a word of the folder
    # or of what it holds to resume from.
    try:
        if resuming:
            code = main(["generate", "--resume", str(out), "--iterations", "3", "--no-progress"])
        else:
            code = generate(vgg_mat, "--output", str(out), "--iterations", "3")
    except QuitAtOnce as quit_at_once:
        code = quit_at_once.args[0]
    assert code == 143
    err = capsys.readouterr().err
    if second_in == "new_run_dir":  # the folder given is held, not yet the run's
        assert err.strip().endswith("interrupted") and not (out / run_record.RUN_JSON).exists()
        return
    if not resuming:  # the folder held nothing of the run yet, and is left empty
        assert f"nothing in {out} to resume from" in err and not list(out.iterdir())
        return
    assert f"continue with --resume {out}" in err
    kept = record(out)
    if second_in == "check_free_space":  # before the resumption's record: the run's own stays
        assert kept == before
    else:
        assert (kept["stopped"], kept["signal"], kept["iterations_completed"]) == (
            "interrupted",
            "SIGTERM",
            1,
        )
        assert kept["costs"] == before["costs"] and kept["seed"] == before["seed"]
    monkeypatch.setattr(run_record.FolderLock, "take", take)
    assert main(["generate", "--resume", str(out), "--iterations", "2", "--no-progress"]) == 0


class QuitAtOnce(Exception):
    """What os._exit raises in these tests: the process would end there."""


def quit_instead_of_exit(monkeypatch):
    from nst_utils.commands import generate as command

    def exits(code):
        raise QuitAtOnce(code)

    monkeypatch.setattr(command.os, "_exit", exits)


@pytest.mark.slow
def test_two_signals_before_the_first_snapshot_leave_a_stopped_record_that_resumes(
    vgg_mat, tmp_path, monkeypatch, capsys
):
    import signal

    from nst_utils.commands import generate as command

    paint = command._paint

    def two_signals(settings, weights, inputs, run, state):  # in the painting's thread
        for _ in range(2):
            seen = run.stop.signal_number
            os.kill(os.getpid(), signal.SIGINT)
            while run.stop.signal_number is seen and not run.stop.quitting:
                time.sleep(0.01)  # until the main thread has taken this signal
        raise SystemExit  # the painting ends here, as the process would

    common = ("--iterations", "3", "--save-every", "1", "--seed", "4", "--log-every", "0")
    whole, out = tmp_path / "whole", tmp_path / "out"
    assert generate(vgg_mat, "--output", str(whole), *common) == 0
    monkeypatch.setattr(command, "_paint", two_signals)
    quit_instead_of_exit(monkeypatch)
    with pytest.raises(QuitAtOnce) as quit_at_once:
        generate(vgg_mat, "--output", str(out), *common)
    assert quit_at_once.value.args == (130,)
    # run.json kept 'running', and --resume refused a folder without state.npz.
    kept = record(out)
    assert (kept["stopped"], kept["signal"], kept["iterations_completed"]) == (
        "interrupted",
        "SIGINT",
        0,
    )
    assert kept["costs"] == [] and kept["snapshots"] == [] and kept["final_image"] is None
    assert not (out / "state.npz").exists() and not (out / "generated_image.jpg").exists()
    assert f"start the run again with --resume {out}" in capsys.readouterr().err
    monkeypatch.setattr(command, "_paint", paint)
    assert main(["generate", "--resume", str(out), "--no-progress"]) == 0
    assert record(out)["costs"] == record(whole)["costs"]
    assert (out / "generated_image.jpg").read_bytes() == (
        whole / "generated_image.jpg"
    ).read_bytes()


def stop_signals_now():
    """The StopSignals whose handler SIGINT has now (the run's, while it runs)."""
    import signal

    return signal.getsignal(signal.SIGINT).__self__


def send_and_wait(number, times=1):
    """Send `number` to this process `times` times from a worker thread, each once the main
    thread has taken the one before."""
    stop = stop_signals_now()
    for _ in range(times):
        seen = stop.signal_number
        os.kill(os.getpid(), number)
        while stop.signal_number is seen and not stop.quitting:
            time.sleep(0.01)


@pytest.mark.slow
def test_two_signals_while_the_final_image_is_written_leave_a_finished_run(
    vgg_mat, tmp_path, monkeypatch, capsys
):
    import signal

    from nst_utils import images

    write = images.write_image

    def two_signals_at_the_final_image(path, *args, **kwargs):
        if path.name == "generated_image.jpg":
            send_and_wait(signal.SIGINT, 2)
        return write(path, *args, **kwargs)

    monkeypatch.setattr(images, "write_image", two_signals_at_the_final_image)
    quit_instead_of_exit(monkeypatch)
    out = tmp_path / "out"
    common = ("--iterations", "3", "--save-every", "2", "--seed", "4", "--log-every", "0")
    with pytest.raises(QuitAtOnce) as quit_at_once:
        generate(vgg_mat, "--output", str(out), *common)
    assert quit_at_once.value.args == (130,)
    # It said 'interrupted' with final_image null, and --resume refused the finished state.
    kept = record(out)
    assert (kept["stopped"], kept["signal"], kept["iterations_completed"]) == (None, None, 3)
    assert kept["final_image"] == "generated_image.jpg" and (out / "generated_image.jpg").is_file()
    assert len(kept["costs"]) == 3 and kept["snapshots"] == ["0.png", "2.png"]
    assert "the painting is done" in capsys.readouterr().err
    assert main(["generate", "--resume", str(out), "--iterations", "3"]) == 2
    assert "has already done 3 iteration(s)" in one_error_line(capsys)


@pytest.fixture
def small_disk(tmp_path):
    """A 4 MB tmpfs mounted for the test (root only), and a way to fill it."""
    import subprocess

    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(disk)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {mounted.stderr.decode().strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def fill(disk):
    with open(disk / "filler", "wb") as handle:
        try:
            while True:
                handle.write(bytes(4096))
                handle.flush()
        except OSError as exc:
            assert exc.errno == errno.ENOSPC


@pytest.mark.slow
def test_a_really_full_disk_leaves_a_record_of_the_saved_state_that_resumes(
    vgg_mat, tmp_path, small_disk, monkeypatch, capsys
):
    from nst_utils.state import read_state

    encode, calls = iio.imwrite, []

    def fills_up(*args, **kwargs):  # the disk fills before the fourth snapshot
        calls.append(1)
        if len(calls) == 4:
            fill(small_disk)
        return encode(*args, **kwargs)

    common = ("--iterations", "8", "--save-every", "1", "--seed", "3", "--log-every", "0")
    whole, out = tmp_path / "whole", small_disk / "out"
    assert generate(vgg_mat, "--output", str(whole), *common) == 0
    monkeypatch.setattr(iio, "imwrite", fills_up)
    assert generate(vgg_mat, "--output", str(out), *common) == 2
    assert "the disk is full" in one_error_line(capsys)
    # run.json said 'running' with 0 iterations: its own write found the disk full.
    saved, kept = read_state(out / "state.npz", arrays=False), record(out)
    assert saved["iterations"] >= 3 and (out / "2.png").is_file() and not (out / "3.png").exists()
    assert (kept["stopped"], kept["iterations_completed"]) == ("disk full", saved["iterations"])
    assert kept["snapshots"] == saved["snapshots"] == ["0.png", "1.png", "2.png"]
    assert [[r["total"], r["content"], r["style"]] for r in kept["costs"]] == saved["history"]
    assert kept["final_image"] is None
    (small_disk / "filler").unlink()  # space again
    monkeypatch.setattr(iio, "imwrite", encode)
    assert main(["generate", "--resume", str(out), "--no-progress"]) == 0
    assert record(out)["costs"] == record(whole)["costs"]
    assert (out / "generated_image.jpg").read_bytes() == (
        whole / "generated_image.jpg"
    ).read_bytes()


@pytest.mark.slow
def test_an_error_inside_the_painting_leaves_a_record_that_says_so(
    vgg_mat, tmp_path, monkeypatch, capsys
):
    from nst_utils import images
    from nst_utils.errors import ImageError

    write, calls = images.write_image, []

    def fails_at_the_third_image(path, *args, **kwargs):
        calls.append(path)
        if len(calls) == 3:
            raise ImageError(f"cannot write {path}")
        return write(path, *args, **kwargs)

    monkeypatch.setattr(images, "write_image", fails_at_the_third_image)
    out = tmp_path / "out"
    common = ("--iterations", "5", "--save-every", "1", "--seed", "3", "--log-every", "0")
    assert generate(vgg_mat, "--output", str(out), *common) == 2
    assert one_error_line(capsys).startswith("error: cannot write")
    # run.json said 'running' with 0 iterations.
    from nst_utils.state import read_state

    kept, saved = record(out), read_state(out / "state.npz", arrays=False)
    assert (kept["stopped"], kept["iterations_completed"]) == ("error", saved["iterations"])
    assert kept["snapshots"] == saved["snapshots"] == ["0.png", "1.png"]
    assert not (out / ".nst-reserve").exists()


@pytest.mark.slow
def test_weights_that_are_not_the_published_file_are_named_once_with_their_md5(
    vgg_mat, tmp_path, capsys
):
    import hashlib

    md5 = hashlib.md5(vgg_mat.read_bytes()).hexdigest()  # the fixture: random weights
    assert generate(vgg_mat, "--output", str(tmp_path / "out"), "--iterations", "1") == 0
    printed = capsys.readouterr().out.splitlines()
    named = [line for line in printed if "not the published file" in line]
    assert named == [
        f"weights {vgg_mat.resolve()}: not the published file (MD5 {md5}); the paintings may "
        f"differ from the original notebook's"
    ]
    assert printed.index(named[0]) < printed.index(next(p for p in printed if p.startswith("seed")))
