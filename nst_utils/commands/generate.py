"""`python -m nst_utils generate`: paint the content image in the style of the style image(s).

Command-line handling and the run's record only: the options are the fields of
nst_utils.settings (environment first, then the flags), the painting is nst_utils.stylize, and
the record (run.json, costs.png, progress.png) is written by nst_utils.run_record. Every input
is checked before anything is written. Each run gets a folder of its own; Ctrl-C or SIGTERM
stops after the current iteration, saving the image, the record and the optimiser's state, so
that `--resume RUN_FOLDER` continues it. This module imports no TensorFlow, so `--help` is quick.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import signal
import sys
import threading
import time
import warnings
from pathlib import Path

from ..errors import ConfigError, EmulatedBfloat16Warning
from ..settings import add_flags

MAX_PROGRESS_SNAPSHOTS = 12
#: Settings a resumed run may take from the command line; the rest come from its record.
RESUMABLE = (
    "num_iterations",
    "save_every",
    "log_every",
    "progress",
    "vgg_model",
    "weights_cache_dir",
    "intra_op_threads",
    "inter_op_threads",
)


def add_arguments(parser):
    add_flags(parser)
    parser.add_argument(
        "--resume",
        type=Path,
        metavar="RUN_FOLDER",
        default=None,
        help="continue a stopped run in its folder, from its saved image and "
        "optimiser state, to a larger --iterations if given",
    )
    parser.add_argument(
        "--allow-emulated-bfloat16",
        action="store_true",
        help="run --precision bfloat16 on a CPU without native bfloat16 (about 10x slower "
        "than float32)",
    )


def run(args):
    from .. import run_record

    with run_record.FolderLock() as lock:  # released when the run ends, however it ends
        return _run(args, lock)


def _run(args, lock):
    from .. import preflight
    from ..settings import Settings, from_args

    clock = time.perf_counter()
    started = datetime.datetime.now(datetime.timezone.utc)
    environment = Settings.from_env()
    resumed = None  # the record of the run being resumed
    if args.resume is not None:
        settings, resumed = _resumed_settings(args, environment)
    else:
        settings = from_args(args, environment)
    # Paths, files, sizes and precision, before TensorFlow's seconds and hundreds of MB.
    typed = "vgg_model" in vars(args)  # the weights' path from --weights
    if preflight.check(settings, getattr(args, "allow_emulated_bfloat16", False), typed):
        # Said once above: the core's warning and TensorFlow's error line would say it again.
        warnings.simplefilter("ignore", EmulatedBfloat16Warning)
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    # Before TensorFlow: a first run's child process that reads the .mat (600 MB) then never
    # runs beside TensorFlow's hundreds of MB, so it peaks no higher than the later runs. A
    # file to download waits until TensorFlow has loaded: a broken one is told first.
    here = Path(settings.vgg_model).expanduser().exists()
    weights = _load_weights(settings, typed) if here else None
    from .. import run_record
    from ..quiet import import_tensorflow

    import_tensorflow()  # before the core, so that its start-up lines stay off the screen
    from ..errors import DiskFullError, NonFiniteCostError
    from ..stop_signals import StopSignals
    from ..stylize import prepare

    seed_given = settings.seed is not None
    # Every input is checked before anything is written; the output folder comes last.
    settings, inputs = prepare(settings)
    weights = weights or _load_weights(settings, typed)
    _tell_unpublished(weights)
    # Imports matplotlib and the rest: a Ctrl-C inside them ends the command before a folder.
    versions = run_record.library_versions()
    # From here every stop signal is the run's: however many come, whenever they come, the run
    # ends with a run.json that tells what its folder holds (RunState).
    with StopSignals() as stop:
        run = RunState(stop, lock, clock)
        try:
            state = run.open(settings, resumed, seed_given, weights, started, versions)
            painting = stop.run(lambda: _paint(settings, weights, inputs, run, state))
            stop.finishing()
            run.painted(painting)
            run.draw(inputs)
            result = painting.result
            final_path = result.saved[-1]
            print(
                f"saved {final_path} after {result.iterations} iteration(s) in "
                f"{run.record['wall_time_seconds']:.1f} s; record: "
                f"{run.run_dir / run_record.RUN_JSON}, {run_record.COSTS_PNG}, "
                f"{run_record.PROGRESS_PNG}",
                flush=True,
            )
            if result.stopped == "interrupted":
                print(
                    f"continue it with: python -m nst_utils generate --resume {run.run_dir}",
                    flush=True,
                )
            if result.stopped == "non-finite":
                raise NonFiniteCostError(
                    f"the cost became NaN or infinite after {result.iterations} iteration(s); the "
                    f"last good image was kept in {final_path}; "
                    f"{_non_finite_advice(settings, result, resumed=resumed is not None)}"
                )
            # A signal after the last iteration found the painting done: it ends as done.
            return 0 if result.stopped is None else stop.exit_code()
        except KeyboardInterrupt:  # the second signal
            stop.interrupt_taken()
            return run.quit_now()
        except DiskFullError as exc:
            run.ended("disk full")
            raise DiskFullError(
                f"{exc}; this run needs about {run_record.bytes_needed(settings) / 1e6:.1f} MB"
            ) from None
        except Exception:  # the error's own line follows; the record says what is on disk
            run.ended("error")
            raise


class RunState:
    """A run's folder as it stands, from which run.json is written at each change: the record
    it started with, the iterations, costs and snapshots its state.npz holds, whether the final
    image belongs to that state, and why the run stopped.

    The painting (in StopSignals' worker thread) tells it of each image it writes (`saver`) and
    each iteration (`stepped`); a stop, whatever its moment, then writes run.json from the
    painting's result when there is one, else from state.npz as it is on disk (`from_disk`).
    """

    #: A file of this size is kept in the run's folder while it runs, and removed to make room
    #: for its last run.json when the disk is full; per iteration (a cost row) and in all.
    RESERVE_PER_ITERATION, RESERVE_BASE = 256, 64 * 1024

    def __init__(self, stop, lock, clock):
        self.stop, self.lock, self.clock = stop, lock, clock
        self.run_dir = self.record = self.painting = None
        self.earlier_seconds = 0
        self.iterations = 0  # iterations painted so far
        self.final_at = None  # iterations of the state the folder's final image belongs to
        self.final_saved = False  # this process wrote the final image: the painting is ending
        self.writing = threading.Lock()  # held by the painting from an image to its state
        self._held = False

    def open(self, settings, resumed, seed_given, weights, started, versions):
        """Make (or take back) the run's folder and write its first run.json; the saved state
        a resumed run continues from (None for a new run)."""
        from .. import run_record
        from ..run_record import FINAL_IMAGE, STATE_FILE
        from ..state import check_state, read_state

        state = None
        lock = self.lock
        if resumed is None:
            if settings.run_dir is not None:  # held before --overwrite removes anything
                lock.take(run_record.prepare_output_dir(settings.run_dir))
            run_dir = self.run_dir = run_record.new_run_dir(
                settings.run_dir, settings.output_dir, settings.overwrite
            )
            lock.take(run_dir)
        else:
            lock.take(settings.run_dir)  # run_dir only once it is this run's to quit
            run_dir = settings.run_dir
            # A run stopped before its first state starts again in its folder.
            painted = resumed.get("iterations_completed") not in (0, None)
            if painted or (run_dir / STATE_FILE).exists():
                state = read_state(run_dir / STATE_FILE)
                # Before run.json is rewritten: a refusal keeps the record.
                check_state(settings, state)
                finished = resumed.get("final_image") is not None
                if state["iterations"] >= settings.num_iterations and finished:
                    raise ConfigError(
                        f"the run in {run_dir} has already done "
                        f"{state['iterations']} iteration(s); give a larger "
                        f"--iterations to continue it"
                    )
                self.iterations = state["iterations"]
                if resumed.get("final_image") == FINAL_IMAGE:
                    self.final_at = state["iterations"]
        self.run_dir = run_dir
        run_record.check_free_space(run_dir, run_record.bytes_needed(settings))
        seed = settings.seed
        print(
            f"seed {seed}"
            + ("" if seed_given else f" (drawn at random; repeat this run with --seed {seed})"),
            flush=True,
        )
        print(
            f"run folder {run_dir}"
            + (f" (resuming after iteration {state['iterations']})" if state else ""),
            flush=True,
        )
        record = _record(
            settings.replace(run_dir=run_dir), seed_given, weights, started, versions, resumed
        )
        self.earlier_seconds = record["wall_time_seconds"] or 0
        self.record = record
        self.write()
        self._reserve(settings.num_iterations)
        return state

    def wall_time(self) -> float:
        """This run's seconds, with the earlier ones of a resumed run."""
        return round(self.earlier_seconds + time.perf_counter() - self.clock, 3)

    def write(self) -> None:
        from .. import run_record

        self.record["wall_time_seconds"] = self.wall_time()
        run_record.write_run_json(self.run_dir / run_record.RUN_JSON, self.record)

    def saver(self, save):
        """hooks.save for the painting: the folder is held from each image until the state
        that goes with it is written (`let_go`), so that a stop reads the two together; the
        final image's iterations are noted."""
        from ..run_record import FINAL_IMAGE

        def save_and_note(path, image):
            if not self._held:
                if self.stop.quitting:  # the folder is the stop's to read: write nothing more
                    threading.Event().wait()
                self.writing.acquire()
                self._held = True
            saved = save(path, image)
            if Path(path).name == FINAL_IMAGE:
                self.final_at, self.final_saved = self.iterations, True
            return saved

        return save_and_note

    def let_go(self, *_) -> None:
        """The painting's state is written (hooks.checkpoint), or the painting has gone on to
        its next iteration or ended: a stop may read the folder."""
        if self._held:
            self._held = False
            self.writing.release()

    def stepped(self, i) -> None:
        self.let_go()
        self.iterations = i + 1

    def scaled(self, scales) -> None:
        """A big print's scales, as planned and as each ends, into run.json at once: a long run
        tells what it is painting. A failed write waits for the run's next record."""
        from ..errors import NSTError

        if self._held:  # the painting holds the folder already (a snapshot's state is due)
            hold = contextlib.nullcontext()
        elif self.stop.quitting:  # the folder is the stop's to write
            return
        else:
            hold = self.writing
        with hold:  # the record is changed only where no stop is writing it
            self.record["scales"] = scales
            try:
                self.write()
            except NSTError:
                pass

    def painted(self, painting) -> None:
        """run.json from the painting's result, whatever stopped it."""
        result = painting.result
        self.painting = painting
        self._progress(
            result.iterations,
            result.history,
            [_relative(p, self.run_dir) for p in result.saved[:-1]],
            result.stopped,
        )
        self.record.update(
            {
                "final_image": _relative(result.saved[-1], self.run_dir),
                "final_costs": dict(zip(("total", "content", "style"), painting.final_costs)),
            }
        )
        if painting.scales is not None:
            self.record["scales"] = painting.scales
        self.write()

    def draw(self, inputs) -> None:
        """costs.png and progress.png, then run.json with the run's whole time."""
        from .. import run_record

        result = self.painting.result
        run_record.plot_costs(self.run_dir / run_record.COSTS_PNG, result.history)
        run_record.plot_progress(
            self.run_dir / run_record.PROGRESS_PNG, _progress_tiles(inputs, result)
        )
        self.write()
        self._release_reserve()

    def from_disk(self, stopped) -> bool:
        """run.json as the folder holds it, for a run that ends without its painting's result:
        state.npz's iterations, costs and snapshots, the final image if it belongs to them, and
        `stopped`; False when there is no (readable) state. Before the first run.json of a
        resumed run, the stopped run's own record stays: it matches its state."""
        from ..errors import NSTError
        from ..run_record import FINAL_IMAGE, STATE_FILE
        from ..state import read_state

        if self.record is None:
            return (self.run_dir / STATE_FILE).exists()
        saved = None
        try:
            saved = read_state(self.run_dir / STATE_FILE, arrays=False)
        except NSTError:
            pass
        iterations = 0 if saved is None else saved["iterations"]
        self._progress(
            iterations,
            [] if saved is None else saved["history"],
            [] if saved is None else saved["snapshots"],
            stopped,
        )
        self.record.update(
            final_image=FINAL_IMAGE if self.final_at == iterations else None,
            final_costs=None,
        )
        self._release_reserve()
        try:
            self.write()
        except NSTError:  # the disk full even so: the state is what resumes
            pass
        return saved is not None

    def ended(self, stopped) -> None:
        """run.json for a run ended by an error (`stopped`: 'disk full', 'error'): the painting's
        result if it had one (then only the plots or a record's write failed), else the state."""
        from ..errors import NSTError

        if self.painting is None:
            if self.run_dir is not None:
                self.from_disk(stopped)
            return
        self._release_reserve()
        try:
            self.write()
        except NSTError:
            pass

    def quit_now(self) -> int:
        """The second stop signal: leave at once, run.json telling what the folder holds; a
        status (128 + the first signal's number) only when there is no run folder yet."""
        stop = self.stop
        if self.run_dir is None:  # nothing made, nothing to record or resume
            print("interrupted", file=sys.stderr, flush=True)
            return stop.exit_code()
        self.writing.acquire()  # the image and state being written are finished; none begins
        painting = self.painting
        if painting is None and self.final_saved:  # only the final state is left to write
            try:
                painting = stop.wait()
            except BaseException:
                painting = None
        if painting is not None:
            self.painted(painting)  # again if begun: the signal may have cut its write short
            if painting.result.stopped is None:
                self._say(
                    f"quitting at once: the painting is done "
                    f"({painting.result.saved[-1]}); its plots were not drawn"
                )
            else:
                self._say(f"quitting at once; continue with --resume {self.run_dir}")
        elif self.from_disk("interrupted"):
            self._say(
                f"quitting at once; the last snapshot and state are in {self.run_dir} "
                f"(continue with --resume {self.run_dir})"
            )
        elif self.record is None:  # the folder holds nothing of this run yet
            self._say(
                f"quitting at once, before the first snapshot: nothing in {self.run_dir} to "
                f"resume from; start the run again"
            )
        else:
            self._say(
                f"quitting at once, before the first snapshot: nothing painted is kept in "
                f"{self.run_dir}; start the run again with --resume {self.run_dir}"
            )
        self._release_reserve()
        sys.stdout.flush()
        self.lock.release()  # os._exit skips the context managers
        os._exit(stop.exit_code())

    def _say(self, line) -> None:
        print(line, file=sys.stderr, flush=True)

    def _progress(self, iterations, history, snapshots, stopped) -> None:
        """How far the run got and why it stopped; a signal that came after the last iteration
        stopped nothing and is not recorded."""
        from .. import run_record

        number = self.stop.signal_number
        self.record.update(
            {
                "iterations_completed": iterations,
                "stopped": stopped,
                "signal": None
                if number is None or stopped is None
                else signal.Signals(number).name,
                "snapshots": list(snapshots),
                "costs": run_record.history_rows(history),
            }
        )
        left = iterations  # a big print's scales, coarse to fine, as far as those iterations go
        for scale in self.record.get("scales") or []:
            scale["iterations_done"] = min(scale["iterations"], left)
            left -= scale["iterations_done"]

    def _reserve_path(self) -> Path:
        return self.run_dir / ".nst-reserve"

    def _reserve(self, iterations) -> None:
        from ..files import replace_atomically

        size = self.RESERVE_BASE + self.RESERVE_PER_ITERATION * (iterations + 1)
        replace_atomically(self._reserve_path(), lambda tmp: tmp.write_bytes(bytes(size)))

    def _release_reserve(self) -> None:
        try:
            self._reserve_path().unlink(missing_ok=True)
        except OSError:
            pass


def _resumed_settings(args, environment):
    """(settings, record) of the run in args.resume, with the flags it may take."""
    import json

    from .. import run_record
    from ..settings import Settings

    run_dir = args.resume.expanduser()
    try:
        record = json.loads((run_dir / run_record.RUN_JSON).read_text(encoding="utf-8"))
        recorded = record["settings"]
        if not isinstance(recorded, dict):
            raise TypeError("settings that are not a mapping")
    except (OSError, ValueError, KeyError, TypeError):
        raise ConfigError(
            f"{run_dir} holds no readable run.json: --resume takes the folder "
            f"of an earlier generate run"
        ) from None
    given = {k for k in vars(args) if k in {f for f in Settings.__dataclass_fields__}}
    refused = sorted(given - set(RESUMABLE))
    if refused:
        raise ConfigError(
            f"--resume continues a run with its recorded settings; drop "
            f"{', '.join(_flag(n) for n in refused)} (only --iterations, --save-every, "
            f"--log-every, --no-progress, --weights and the thread options may change)"
        )
    try:
        base = Settings.from_record(recorded, environment)
    except (TypeError, ValueError) as exc:  # ConfigError too: a value out of range or form
        raise ConfigError(
            f"the settings in {run_dir / run_record.RUN_JSON} are damaged ({exc}); the run "
            f"cannot be resumed; start it again"
        ) from None
    settings = base.replace(**{k: getattr(args, k) for k in given}, run_dir=run_dir.resolve())
    return settings, record


def _flag(name):
    from ..settings import Settings

    return Settings.__dataclass_fields__[name].metadata["flag"] or name


def _load_weights(settings, typed: bool):
    """The run's weights; only the project's default path is ever downloaded to.

    A path typed with --weights or set by NST_WEIGHTS is not, so a typo costs an error message
    that names it rather than a 535 MB download to the wrong place.
    """
    from ..preflight import weights_named_by
    from ..weights import sources
    from ..weights.load import load_for_run

    return load_for_run(
        settings.vgg_model,
        download_to=None if typed else sources.default_weights_path(),
        named_by=weights_named_by(settings, typed),
        cache=settings.weights_cache,
        cache_dir=settings.weights_cache_dir,
    )


def _tell_unpublished(weights) -> None:
    """One line at the start of a run whose weights are not the published file (their MD5, which
    the weights' cache keeps, matches no published one)."""
    from ..weights.sources import published_format

    if published_format(weights.md5) is None:
        print(
            f"weights {weights.path}: not the published file (MD5 {weights.md5}); the "
            f"paintings may differ from the original notebook's",
            flush=True,
        )


def _record(settings, seed_given, weights, started, versions, resumed=None) -> dict:
    """run.json at the start of a run (or of its resumption); the loop's figures come at the end."""

    record = {
        "command": "generate",
        "settings": settings.record(),
        "seed": settings.seed,
        "seed_given": seed_given if resumed is None else resumed.get("seed_given", True),
        "versions": versions,
        "weights": weights.record(),
        "started": started.isoformat(timespec="seconds"),
        "wall_time_seconds": None,
        "iterations_completed": 0,
        "stopped": "running",
        "signal": None,
        "final_image": None,
        "snapshots": [],
        "final_costs": None,
        "costs": [],
    }
    if resumed is not None:
        # Fields of the wrong type (a hand-edited record) are dropped: the sums and checks
        # below would otherwise fail with a traceback, the time's only after the painting.
        def earlier(key, kind, default):
            value = resumed.get(key)
            return value if isinstance(value, kind) and not isinstance(value, bool) else default

        record["started"] = earlier("started", str, record["started"])
        record["wall_time_seconds"] = earlier("wall_time_seconds", (int, float), None)
        record["resumed"] = [str(t) for t in earlier("resumed", list, [])] + [
            started.isoformat(timespec="seconds")
        ]
        md5 = earlier("weights", dict, {}).get("md5")
        if md5 not in (None, weights.md5):
            raise ConfigError(
                f"the weights {weights.path} are not the ones this run started "
                f"with (MD5 {md5}); give those with --weights"
            )
    return record


def _paint(settings, weights, inputs, run, state):
    from ..progress import ProgressBar
    from ..stylize import saver, stylize
    from ..training import Hooks

    done = 0 if state is None else state["iterations"]
    with ProgressBar(settings.num_iterations, settings.progress, initial=done) as bar:

        def on_step(i, *costs):
            run.stepped(i)
            bar.on_step(i, *costs)

        hooks = Hooks(
            report=bar.report,
            log_every=settings.log_every,
            on_step=on_step,
            on_stage=bar.on_stage,
            on_scale=run.scaled,
            should_stop=run.stop.requested,
            save=run.saver(saver(settings, inputs)),
            checkpoint=run.let_go,
        )
        try:
            return stylize(settings, weights.weights, inputs, run.run_dir, hooks, state=state)
        finally:
            run.let_go()


def _non_finite_advice(settings, result, resumed: bool = False) -> str:
    """What to lower: the weights when the cost overflowed float32, else the learning rate;
    in a new run when this one was resumed (--resume keeps the recorded settings)."""
    import math

    totals = [row[0] for row in result.history]
    overflowed = not totals or max(abs(t) for t in totals if math.isfinite(t)) > 1e30
    if overflowed:
        advice = (
            f"the cost overflowed float32 (alpha {settings.alpha:g}, beta {settings.beta:g}"
            f", style layer weights {', '.join(f'{w:g}' for _, w in settings.style_layers)}"
            f", tv weight {settings.tv_weight:g}): lower --alpha, --beta, the "
            f"--style-layers weights or --tv-weight"
        )
    elif settings.optimizer == "adam":
        advice = "try a lower --learning-rate"
    else:
        advice = "try --optimizer adam or lower --alpha and --beta"
    return advice + (" in a new run (--resume keeps the run's settings)" if resumed else "")


def _relative(path, output) -> str:
    path = Path(path)
    return str(path.relative_to(output)) if path.is_relative_to(output) else str(path)


def _progress_tiles(inputs, result):
    """(title, pixels) for progress.png: content, styles, then up to 12 snapshots and the result."""
    from .. import images

    tiles = [("content", inputs.content)]
    tiles += [
        (f"style {k + 1}" if len(inputs.styles) > 1 else "style", p)
        for k, p in enumerate(inputs.styles)
    ]
    snapshots = [p for p in result.saved[:-1] if Path(p).exists()]
    if len(snapshots) > MAX_PROGRESS_SNAPSHOTS:
        picks = sorted(
            {
                round(k * (len(snapshots) - 1) / (MAX_PROGRESS_SNAPSHOTS - 1))
                for k in range(MAX_PROGRESS_SNAPSHOTS)
            }
        )
        snapshots = [snapshots[k] for k in picks]
    tiles += [(f"iteration {Path(p).stem}", images.read_image(p)) for p in snapshots]
    if result.saved:
        tiles.append((f"result ({result.iterations} it.)", images.read_image(result.saved[-1])))
    return tiles
