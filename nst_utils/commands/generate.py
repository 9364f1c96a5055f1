"""`python -m nst_utils generate`: paint the content image in the style of the style image(s).

Command-line handling and the run's record only: the options are the fields of
nst_utils.settings (environment first, then the flags), the painting is nst_utils.stylize, and
the record (run.json, costs.png, progress.png) is written by nst_utils.run_record. Every input
is checked before anything is written. Each run gets a folder of its own; Ctrl-C or SIGTERM
stops after the current iteration, saving the image, the record and the optimiser's state, so
that `--resume RUN_FOLDER` continues it. This module imports no TensorFlow, so `--help` is quick.
"""

from __future__ import annotations

import datetime
import os
import signal
import sys
import time
from pathlib import Path

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


def run(args):
    from .. import run_record

    with run_record.FolderLock() as lock:  # released when the run ends, however it ends
        return _run(args, lock)


def _run(args, lock):
    from .. import run_record
    from ..quiet import import_tensorflow

    import_tensorflow()  # first, so that its start-up lines stay off the screen
    from ..errors import DiskFullError, NonFiniteCostError
    from ..settings import Settings, from_args
    from ..stop_signals import StopSignals
    from ..stylize import STATE_FILE, check_state, prepare, read_state

    clock = time.perf_counter()
    started = datetime.datetime.now(datetime.timezone.utc)
    environment = Settings.from_env()
    resumed = None  # the record of the run being resumed
    if args.resume is not None:
        settings, resumed = _resumed_settings(args, environment)
    else:
        settings = from_args(args, environment)
    seed_given = settings.seed is not None
    # Every input is checked before anything is written; the output folder comes last.
    settings, inputs = prepare(settings)
    weights = _load_weights(settings, typed="vgg_model" in vars(args))
    # Imports matplotlib and the rest: a Ctrl-C inside them ends the command before a folder is made.
    versions = run_record.library_versions()
    state = None
    # From here a stop signal is the run's: the folder made and the record written meanwhile
    # end as a stopped run's, not as a folder whose run.json says 'running'.
    with StopSignals() as stop:
        run_dir = record = None
        try:
            if resumed is None:
                if settings.run_dir is not None:  # held before --overwrite removes anything
                    lock.take(run_record.prepare_output_dir(settings.run_dir))
                run_dir = run_record.new_run_dir(
                    settings.run_dir, settings.output_dir, settings.overwrite
                )
                lock.take(run_dir)
                settings = settings.replace(run_dir=run_dir)
            else:
                lock.take(settings.run_dir)  # run_dir only once it is this run's to quit
                run_dir = settings.run_dir
                state = read_state(run_dir / STATE_FILE)
                # Before run.json is rewritten: a refusal keeps the record.
                check_state(settings, state)
                if state["iterations"] >= settings.num_iterations:
                    raise _config_error(
                        f"the run in {run_dir} has already done "
                        f"{state['iterations']} iteration(s); give a larger "
                        f"--iterations to continue it"
                    )
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

            record = _record(settings, seed_given, weights, started, versions, resumed)
            earlier_seconds = record["wall_time_seconds"] or 0

            def wall_time():  # this run's seconds, with the earlier ones of a resumed run
                return round(earlier_seconds + time.perf_counter() - clock, 3)

            run_record.write_run_json(run_dir / run_record.RUN_JSON, record)
        except KeyboardInterrupt:  # a second signal before the painting began
            if run_dir is None:  # no run folder yet: nothing to record or resume
                print("interrupted", file=sys.stderr, flush=True)
                return 128 + (stop.signal_number or signal.SIGINT)
            _quit_now(run_dir, stop, record, lock)
        painting = None
        try:
            painting = stop.run(lambda: _paint(settings, weights, inputs, run_dir, stop, state))
            # Still under StopSignals: a second Ctrl-C while the plots are drawn quits through
            # _quit_now, which brings run.json up to the saved state.
            _write_record(record, painting, run_dir, inputs, stop, wall_time)
        except KeyboardInterrupt:
            record["wall_time_seconds"] = wall_time()
            _quit_now(
                run_dir,
                stop,
                record,
                lock,
                finished=painting is not None and painting.result.stopped is None,
            )
        except DiskFullError as exc:
            record["wall_time_seconds"] = wall_time()
            _record_saved_state(run_dir, stop, record, "disk full")
            raise DiskFullError(
                f"{exc}; this run needs about {run_record.bytes_needed(settings) / 1e6:.1f} MB"
            ) from None
    result = painting.result
    final_path = result.saved[-1]
    print(
        f"saved {final_path} after {result.iterations} iteration(s) in "
        f"{record['wall_time_seconds']:.1f} s; record: {run_dir / run_record.RUN_JSON}, "
        f"{run_record.COSTS_PNG}, {run_record.PROGRESS_PNG}",
        flush=True,
    )
    if result.stopped == "interrupted":
        print(f"continue it with: python -m nst_utils generate --resume {run_dir}", flush=True)
    if result.stopped == "non-finite":
        raise NonFiniteCostError(
            f"the cost became NaN or infinite after {result.iterations} iteration(s); the last "
            f"good image was kept in {final_path}; "
            f"{_non_finite_advice(settings, result, resumed=resumed is not None)}"
        )
    # A signal that came after the last iteration found the painting done: it ends as done.
    return 0 if stop.signal_number is None or result.stopped is None else 128 + stop.signal_number


def _write_record(record, painting, run_dir, inputs, stop, wall_time) -> None:
    """The run's record, whatever stopped it: run.json, costs.png and progress.png."""
    from .. import run_record

    result = painting.result
    _record_progress(
        record,
        result.iterations,
        result.history,
        [_relative(p, run_dir) for p in result.saved[:-1]],
        result.stopped,
        stop,
    )
    record.update(
        {
            "final_image": _relative(result.saved[-1], run_dir),
            "final_costs": dict(zip(("total", "content", "style"), painting.final_costs)),
        }
    )
    if painting.scales is not None:
        record["scales"] = painting.scales
    run_record.plot_costs(run_dir / run_record.COSTS_PNG, result.history)
    run_record.plot_progress(run_dir / run_record.PROGRESS_PNG, _progress_tiles(inputs, result))
    record["wall_time_seconds"] = wall_time()
    run_record.write_run_json(run_dir / run_record.RUN_JSON, record)


def _config_error(message):
    from ..errors import ConfigError

    return ConfigError(message)


def _resumed_settings(args, environment):
    """(settings, record) of the run in args.resume, with the flags it may take."""
    import json

    from ..settings import Settings

    run_dir = args.resume.expanduser()
    try:
        record = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
        recorded = record["settings"]
        if not isinstance(recorded, dict):
            raise TypeError("settings that are not a mapping")
    except (OSError, ValueError, KeyError, TypeError):
        raise _config_error(
            f"{run_dir} holds no readable run.json: --resume takes the folder "
            f"of an earlier generate run"
        ) from None
    given = {k for k in vars(args) if k in {f for f in Settings.__dataclass_fields__}}
    refused = sorted(given - set(RESUMABLE))
    if refused:
        raise _config_error(
            f"--resume continues a run with its recorded settings; drop "
            f"{', '.join(_flag(n) for n in refused)} (only --iterations, --save-every, "
            f"--log-every, --no-progress, --weights and the thread options may change)"
        )
    try:
        base = Settings.from_record(recorded, environment)
    except (TypeError, ValueError) as exc:  # ConfigError too: a value out of range or form
        raise _config_error(
            f"the settings in {run_dir / 'run.json'} are damaged ({exc}); the run "
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
    from ..weights import sources
    from ..weights.load import load_for_run

    path = settings.vgg_model
    if typed:
        named_by = "--weights"
    elif sources.is_default_path(path):
        named_by = None
    else:
        named_by = sources.WEIGHTS_ENV
    return load_for_run(
        path,
        download_to=None if typed else sources.default_weights_path(),
        named_by=named_by,
        cache=settings.weights_cache,
        cache_dir=settings.weights_cache_dir,
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
            raise _config_error(
                f"the weights {weights.path} are not the ones this run started "
                f"with (MD5 {md5}); give those with --weights"
            )
    return record


def _paint(settings, weights, inputs, run_dir, stop, state):
    from ..progress import ProgressBar
    from ..stylize import stylize
    from ..training import Hooks

    done = 0 if state is None else state["iterations"]
    with ProgressBar(settings.num_iterations, settings.progress, initial=done) as bar:
        hooks = Hooks(
            report=bar.report,
            log_every=settings.log_every,
            on_step=bar.on_step,
            on_stage=bar.on_stage,
            should_stop=stop.requested,
        )
        return stylize(settings, weights.weights, inputs, run_dir, hooks, state=state)


def _record_progress(record, iterations, history, snapshots, stopped, stop) -> None:
    """Put in the run's record how far it got and why it stopped (`stop`: its StopSignals);
    a signal that came after the last iteration stopped nothing and is not recorded."""
    from .. import run_record

    record.update(
        {
            "iterations_completed": iterations,
            "stopped": stopped,
            "signal": (
                None
                if stop.signal_number is None or stopped is None
                else signal.Signals(stop.signal_number).name
            ),
            "snapshots": list(snapshots),
            "costs": run_record.history_rows(history),
        }
    )


def _record_saved_state(run_dir, stop, record, stopped) -> bool:
    """Bring run.json up to the saved state (its iterations, costs and snapshots) of a run that
    ends without its own record, as `stopped`; False when there is no state. Best effort: on a
    full disk the record may stay as the run started it; the state is what resumes."""
    from .. import run_record
    from ..errors import NSTError
    from ..stylize import STATE_FILE, read_state

    state_path = Path(run_dir) / STATE_FILE
    if not state_path.exists():
        return False
    if record is None:  # run.json is still the stopped run's own, which matches its state
        return True
    try:
        saved = read_state(state_path, arrays=False)
        _record_progress(
            record, saved["iterations"], saved["history"], saved["snapshots"], stopped, stop
        )
        run_record.write_run_json(Path(run_dir) / run_record.RUN_JSON, record)
    except (NSTError, OSError):
        pass
    return True


def _quit_now(run_dir, stop, record, lock, finished: bool = False):
    """The second stop signal: leave at once; the last snapshot and state stay on disk, and
    run.json says how far they go (the state's iterations, costs and snapshots). `finished`:
    every iteration was done and only the plots were being drawn; the run is recorded as done.
    `lock`: the run's FolderLock, released first (os._exit skips the context managers)."""
    from ..training import FINAL_IMAGE

    if finished:
        record["final_image"] = FINAL_IMAGE  # saved with the state, before the plots
        _record_saved_state(run_dir, stop, record, None)
        print(
            f"quitting at once: the painting is done ({Path(run_dir) / FINAL_IMAGE}); its "
            f"plots were not drawn",
            file=sys.stderr,
            flush=True,
        )
    elif _record_saved_state(run_dir, stop, record, "interrupted"):
        print(
            f"quitting at once; the last snapshot and state are in {run_dir} (continue with "
            f"--resume {run_dir})",
            file=sys.stderr,
            flush=True,
        )
    else:
        print(
            f"quitting at once, before the first snapshot: nothing in {run_dir} to resume "
            f"from; start the run again",
            file=sys.stderr,
            flush=True,
        )
    sys.stdout.flush()
    lock.release()
    os._exit(128 + (stop.signal_number or signal.SIGINT))


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
