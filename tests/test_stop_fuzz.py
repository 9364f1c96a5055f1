"""Stop signals at random moments of real `generate` processes: 1-3 SIGINT/SIGTERM after a
seeded choice of event (a line of output, a file appearing) and a seeded offset. After each
stop, run.json must tell what the folder holds; the run is then continued (the same command, or
--resume) until it finishes, and its final image must equal an uninterrupted run's bit for bit.

The moments are events, not times: the test holds on a loaded machine. Most runs go through a
driver process that runs the command line again and again (TensorFlow imported once), its
os._exit raising instead of ending it; one parametrisation starts a process per run, so that
quitting at once and the interpreter's shutdown are fuzzed for real too.
"""

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from nst_utils.state import read_state

ITERATIONS = 8
SIGNALS = (signal.SIGINT, signal.SIGTERM)


def command(vgg_mat, out, save_every, resume=False):
    if resume:
        options = ["--resume", str(out)]
    else:
        options = [
            "--weights",
            str(vgg_mat),
            "--width",
            "64",
            "--height",
            "48",
            "--iterations",
            str(ITERATIONS),
            "--save-every",
            str(save_every),
            "--log-every",
            "0",
            "--seed",
            "11",
            "--output",
            str(out),
        ]
    return ["generate", "--no-progress", *options]


#: The driver: one command line per stdin line (JSON), each ended by an END line on both streams.
DRIVER = """
import json, os, signal, sys
from nst_utils.cli import main

class QuitAtOnce(BaseException):
    pass

def quit_at_once(code):
    raise QuitAtOnce(code)

os._exit = quit_at_once  # the run's painting thread is left blocked, holding nothing
def ignore(number, frame):
    pass

for line in sys.stdin:
    # SIGTERM as SIGINT before a run's own handlers: nothing of it is on disk yet.
    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, signal.default_int_handler)
    try:
        try:
            code = main(json.loads(line))
        finally:
            for number in (signal.SIGINT, signal.SIGTERM):
                signal.signal(number, ignore)
    except QuitAtOnce as stop:
        code = stop.args[0]
    except KeyboardInterrupt:
        code = 130
    sys.stderr.write("END\\n")
    sys.stderr.flush()
    print(f"END {code}", flush=True)
"""


class Lines:
    """A stream's lines, read as they come by a thread of their own."""

    def __init__(self, stream):
        self.lines = []
        self.reader = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self.reader.start()

    def _read(self, stream):
        for line in stream:
            self.lines.append(line)


class Process:
    """One run in a process of its own: `lines` (stdout so far), send(), end()."""

    def __init__(self, argv, cwd):
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.started_ns = time.time_ns()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "nst_utils", *argv],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=str(cwd),
        )
        self._out, self._err = Lines(self.proc.stdout), Lines(self.proc.stderr)
        self.lines = self._out.lines

    def ended(self) -> bool:
        return self.proc.poll() is not None

    def send(self, number) -> None:
        self.proc.send_signal(number)

    def end(self, seconds=300):
        code = self.proc.wait(seconds)
        self._out.reader.join()
        self._err.reader.join()
        return code, "".join(self.lines), "".join(self._err.lines)


class Driver:
    """Runs in one long-lived driver process: start(argv) -> a run with Process's methods."""

    def __init__(self, cwd):
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(
            [sys.executable, "-c", DRIVER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=str(cwd),
        )
        self.out, self.err = Lines(self.proc.stdout), Lines(self.proc.stderr)

    def start(self, argv, cwd=None):
        return DriverRun(self, argv)

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(120)


class DriverRun:
    def __init__(self, driver, argv):
        self.driver = driver
        self.out_from, self.err_from = len(driver.out.lines), len(driver.err.lines)
        self.started_ns = time.time_ns()
        driver.proc.stdin.write(json.dumps(argv) + "\n")
        driver.proc.stdin.flush()

    @property
    def lines(self):
        return self.driver.out.lines[self.out_from :]

    def ended(self) -> bool:
        assert self.driver.proc.poll() is None, "".join(self.driver.err.lines)
        return any(line.startswith("END ") for line in self.lines)

    def send(self, number) -> None:
        self.driver.proc.send_signal(number)

    def end(self, seconds=300):
        deadline = time.monotonic() + seconds
        while not (self.ended() and "END\n" in self.driver.err.lines[self.err_from :]):
            assert time.monotonic() < deadline, "the driver's run never ended"
            time.sleep(0.01)
        out = self.lines
        stop = next(k for k, line in enumerate(out) if line.startswith("END "))
        err = self.driver.err.lines[self.err_from :]
        err = err[: err.index("END\n")]
        self.driver.out.lines.append("")  # keeps later runs' slices apart
        return int(out[stop].split()[1]), "".join(out[:stop]), "".join(err)


def wait_until(run, happened, seconds=300) -> bool:
    """True once happened() is; False if the run ended first."""
    deadline = time.monotonic() + seconds
    while not happened():
        if run.ended():
            return happened()
        assert time.monotonic() < deadline, "no event in 300 s"
        time.sleep(0.005)
    return True


def events(out, done):
    """(name, happened) of the moments a run resumed after `done` iterations goes through."""

    def line(start):
        return lambda proc: any(s.startswith(start) for s in proc.lines)

    def file(name):  # written by this process: a resumed run's folder has earlier ones
        def written(proc):
            try:
                return (out / name).stat().st_mtime_ns >= proc.started_ns
            except FileNotFoundError:
                return False

        return written

    found = [("line 'seed'", line("seed ")), ("line 'run folder'", line("run folder "))]
    found += [(f"file {k}.png", file(f"{k}.png")) for k in range(done, ITERATIONS)]
    found += [("file state.npz", file("state.npz")), ("file final", file("generated_image.jpg"))]
    found += [("file costs.png", file("costs.png")), ("line 'saved'", line("saved "))]
    return found


def check_record(out, code, stdout, stderr, moment):
    """run.json against the files; True when the run is finished."""
    assert code in (0, 130, 143, -signal.SIGTERM), (moment, code, stderr)
    for word in ("Traceback", "Exception ignored", "KeyboardInterrupt"):
        assert word not in stderr, (moment, stderr)
    if not (out / "run.json").exists():  # stopped before the run's record: nothing to resume
        assert code != 0 and not (out / "state.npz").exists(), (moment, stderr)
        return False
    record = json.loads((out / "run.json").read_text())
    assert record["stopped"] in (None, "interrupted"), (moment, record["stopped"], stderr)
    state = read_state(out / "state.npz", arrays=False) if (out / "state.npz").exists() else None
    iterations = record["iterations_completed"]
    if state is None:
        assert iterations == 0 and record["costs"] == [] and record["snapshots"] == [], moment
    else:
        assert iterations == state["iterations"], (moment, iterations, state, stderr)
        rows = [[r["total"], r["content"], r["style"]] for r in record["costs"]]
        assert rows == state["history"], moment
        assert record["snapshots"] == state["snapshots"], moment
    for name in record["snapshots"]:
        assert (out / name).is_file(), (moment, name)
    if record["final_image"] is not None:
        assert (out / record["final_image"]).is_file(), moment
    if code == 0:
        assert record["stopped"] is None, (moment, stderr)
    finished = record["stopped"] is None
    if finished:
        assert iterations == ITERATIONS and record["final_image"] == "generated_image.jpg"
    else:
        assert record["signal"] in ("SIGINT", "SIGTERM"), moment
    return finished


@pytest.fixture(scope="module")
def uninterrupted(vgg_mat, tmp_path_factory):
    """save_every -> the folder of a run of the same command never stopped."""
    made = {}

    def run(save_every):
        if save_every not in made:
            out = tmp_path_factory.mktemp("whole") / "out"
            done = subprocess.run(
                [sys.executable, "-m", "nst_utils", *command(vgg_mat, out, save_every)],
                capture_output=True,
                text=True,
                timeout=600,
            )
            assert done.returncode == 0, done.stderr
            made[save_every] = out
        return made[save_every]

    return run


@pytest.mark.slow
@pytest.mark.parametrize(
    "seed, save_every, moments, runner",
    [
        (1, 1, 6, "processes"),
        (2, 1, 12, "driver"),
        (3, 2, 12, "driver"),
        (4, 2, 12, "driver"),
    ],
)
def test_any_stop_leaves_a_true_record_and_resumes_to_the_same_image(
    seed, save_every, moments, runner, vgg_mat, tmp_path, uninterrupted
):
    rng = random.Random(seed)
    whole = uninterrupted(save_every)
    driver = Driver(tmp_path) if runner == "driver" else None
    start = driver.start if driver else Process
    sent, chain = 0, 0
    try:
        while sent < moments:
            chain += 1
            out = tmp_path / f"run{chain}"
            finished = False
            while not finished:
                resume = (out / "run.json").exists()
                record = json.loads((out / "run.json").read_text()) if resume else {}
                run = start(command(vgg_mat, out, save_every, resume), tmp_path)
                moment = None
                if sent < moments:
                    name, happened = rng.choice(events(out, record.get("iterations_completed", 0)))
                    offset = rng.uniform(0, 0.3)
                    numbers = [rng.choice(SIGNALS) for _ in range(rng.randint(1, 3))]
                    gaps = [rng.uniform(0, 0.2) for _ in numbers]
                    if wait_until(run, lambda: happened(run)):
                        time.sleep(offset)
                        moment = (name, round(offset, 3), [signal.Signals(n).name for n in numbers])
                        for number, gap in zip(numbers, gaps):
                            if run.ended():
                                break
                            run.send(number)
                            time.sleep(gap)
                        sent += 1
                code, stdout, stderr = run.end()
                finished = check_record(out, code, stdout, stderr, moment)
            assert (out / "generated_image.jpg").read_bytes() == (
                whole / "generated_image.jpg"
            ).read_bytes(), chain
            record, reference = (json.loads((d / "run.json").read_text()) for d in (out, whole))
            assert record["costs"] == reference["costs"]
            assert np.array_equal(
                read_state(out / "state.npz")["image"], read_state(whole / "state.npz")["image"]
            )
    finally:
        if driver is not None:
            driver.close()
