"""TensorFlow's start-up lines stay off the screen; all else written meanwhile gets through."""

import os
import subprocess
import sys

import pytest

from nst_utils.config import PROJECT_ROOT
from nst_utils.quiet import STARTUP_NOISE, without_startup_noise
from limits import HANG_SECONDS

#: What TensorFlow 2.21 printed on this CPU-only machine before nst_utils held it back.
STARTUP = """\
WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
I0000 00:00:1795613778.751899    8014 port.cc:153] oneDNN custom operations are on. You may see slightly different numerical results due to floating-point round-off errors from different computation orders. To turn them off, set the environment variable `TF_ENABLE_ONEDNN_OPTS=0`.
I0000 00:00:1795613778.752265    8014 cudart_stub.cc:31] Could not find cuda drivers on your machine, GPU will not be used.
E0000 00:00:1795613781.376593    8014 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error: Failed call to cuInit: UNKNOWN ERROR (303)
"""


def _clean_env(**extra):
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env["PYTHONPATH"] = os.pathsep.join(
        [str(PROJECT_ROOT)] + [p for p in [os.environ.get("PYTHONPATH")] if p]
    )
    env.update(extra)
    return env


def _python(*args):
    """Run this Python with `args` in a clean environment; the finished process."""
    return subprocess.run(
        [sys.executable, *args],
        env=_clean_env(),
        capture_output=True,
        text=True,
        timeout=HANG_SECONDS,
    )


def _printed(code) -> tuple:
    """(stdout, stderr) of `code` run by `_python`, which must succeed."""
    done = _python("-c", code)
    assert done.returncode == 0, done.stderr
    return done.stdout, done.stderr


def test_the_filter_drops_the_startup_lines_and_keeps_the_rest():
    other = "E0000 00:00:1.0 1 some_kernel.cc:1] a real error\nTraceback (most recent call last):\n"
    assert without_startup_noise(STARTUP) == ""
    assert without_startup_noise(STARTUP + other) == other
    assert not STARTUP_NOISE.search(other)


@pytest.mark.slow
def test_the_command_lines_first_screen_is_clean():
    done = _python("-m", "nst_utils", "--help")
    assert done.returncode == 0 and done.stderr == "" and "generate" in done.stdout


@pytest.mark.slow
def test_a_command_that_runs_tensorflow_prints_no_startup_lines():
    done = _python("-m", "nst_utils", "reference")
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert '"compute_content_cost": 6.7655' in done.stdout


@pytest.mark.slow
@pytest.mark.parametrize("lookup", ["", "importlib.util.find_spec('tensorflow')\n"])
def test_tensorflow_imported_after_nst_utils_is_quiet_and_leaves_keras_for_later(lookup):
    # A notebook's cells (`from nst_utils import *`, then `import tensorflow` and the
    # original's compat.v1 calls) or a grading record print nothing and skip Keras, which stays
    # importable. Looking TensorFlow up first (importlib.util.find_spec, as libraries check
    # what is installed) changes nothing.
    code = (
        "import importlib.util, sys\nfrom nst_utils import *\n"
        + lookup
        + "import tensorflow as tf\n"
        "print('keras' in sys.modules)\n"
        "tf.compat.v1.disable_v2_behavior()\n"
        "with tf.compat.v1.Session() as s: print(s.run(tf.constant(2) * 3))\n"
        "import keras\n"
        "print(tf.keras.layers.Dense.__name__, 'keras' in sys.modules)"
    )
    assert _printed(code) == ("False\n6\nDense True\n", "")


@pytest.mark.slow
def test_tensorflow_imported_before_nst_utils_is_left_as_it_is():
    code = "import sys, tensorflow, nst_utils\nprint('keras' in sys.modules)"
    assert _printed(code)[0] == "True\n"


@pytest.mark.slow
def test_keras_held_back_while_tensorflow_loads_still_imports_as_a_submodule_later():
    # TensorFlow puts Keras's folders on its own __path__ as it loads (so that
    # `from tensorflow.keras import layers` resolves); holding Keras back must leave no holes
    # there. The same import without nst_utils is the reference.
    code = (
        "import sys, tensorflow as tf\n"
        "print(tf.__path__, tf.compat.v2.__path__)\n"
        "print('keras' in sys.modules)\n"
        "from tensorflow.keras import layers\n"
        "from tensorflow.keras.optimizers import Adam\n"
        "print(layers.Dense.__name__, Adam.__name__)"
    )
    held = _printed("import nst_utils\n" + code)[0].splitlines()
    plain = _printed(code)[0].splitlines()
    assert held[0] == plain[0] and "None" not in held[0]
    assert held[1:] == ["False", "Dense Adam"] and plain[2] == "Dense Adam"


@pytest.mark.slow
def test_a_reloaded_nst_utils_installs_one_hook_and_imports_tensorflow_once_quietly():
    # importlib.reload (or a notebook's autoreload) makes a second hook class; the hooks of
    # both must be known as the same hook, not call each other without end.
    code = (
        "import importlib, sys, nst_utils, nst_utils.quiet\n"
        "importlib.reload(nst_utils.quiet)\nimportlib.reload(nst_utils)\n"
        "print(sum(type(f).__name__ == '_QuietTensorFlowImport' for f in sys.meta_path))\n"
        "import tensorflow as tf\n"
        "print('keras' in sys.modules, len(sys.meta_path) == len(set(map(id, sys.meta_path))))\n"
        "print(sum(type(f).__name__ == '_QuietTensorFlowImport' for f in sys.meta_path))"
    )
    assert _printed(code) == ("1\nFalse True\n0\n", "")


def _broken_tensorflow(folder):
    """A `tensorflow` package in `folder` whose import writes a native-looking line and fails."""
    package = folder / "tensorflow"
    package.mkdir()
    (package / "__init__.py").write_text(
        "import os\nos.write(2, b'loader: libtensorflow_cc.so.2 is missing\\n')\n"
        "raise ImportError('libtensorflow_cc.so.2: cannot open shared object file')\n"
    )
    env = _clean_env()
    env["PYTHONPATH"] = os.pathsep.join([str(folder), env["PYTHONPATH"]])
    return env


@pytest.mark.slow
def test_a_broken_tensorflow_is_shown_and_stderr_given_back(tmp_path):
    code = (
        "import os, nst_utils\ntry:\n    import tensorflow\n"
        "except ImportError as exc:\n    print('caught', exc)\n"
        "os.write(2, b'stderr is back\\n')"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        env=_broken_tensorflow(tmp_path),
        capture_output=True,
        text=True,
        timeout=HANG_SECONDS,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "caught libtensorflow_cc.so.2: cannot open shared object file\n"
    assert done.stderr == "loader: libtensorflow_cc.so.2 is missing\nstderr is back\n"


@pytest.mark.slow
@pytest.mark.parametrize(
    "command", [["reference"], ["grade", "nowhere.ipynb"], ["generate", "--iterations", "1"]]
)
def test_a_command_without_a_working_tensorflow_says_so_in_one_line(tmp_path, command):
    done = subprocess.run(
        [sys.executable, "-m", "nst_utils", *command],
        env=_broken_tensorflow(tmp_path),
        capture_output=True,
        text=True,
        timeout=HANG_SECONDS,
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    last = done.stderr.splitlines()[-1]
    assert last.startswith("error: TensorFlow cannot be imported (ImportError: libtensorflow_cc")
    assert "pip install -r requirements.txt" in last


def test_another_missing_requirement_is_named_in_the_one_line():
    from nst_utils.quiet import requirement_error

    missing = ModuleNotFoundError("No module named 'xxhash'", name="xxhash")
    assert str(requirement_error(missing)).startswith(
        "xxhash cannot be imported (ModuleNotFoundError: No module named 'xxhash'); install"
    )
    nameless = ImportError("DLL load failed")
    assert str(requirement_error(nameless)).startswith("a requirement cannot be imported")


CTRL_C_DURING_IMPORT = """
import os, signal, sys, threading, time
import nst_utils
{imports}
def presses():  # from the moment TensorFlow's library is mapped: inside its import
    while "libtensorflow_framework" not in open("/proc/self/maps").read():
        time.sleep(0.001)
    for delay in {delays}:
        time.sleep(delay)
        os.kill(os.getpid(), signal.SIGINT)
threading.Thread(target=presses, daemon=True).start()
begin = time.monotonic()
try:
    {statement}
    print("no interrupt")
except KeyboardInterrupt:
    print("interrupted", round(time.monotonic() - begin, 2), "pywrap" in " ".join(sys.modules))
print("handler restored", signal.getsignal(signal.SIGINT) is signal.default_int_handler)
import tensorflow as tf
tf.compat.v1.disable_eager_execution()
with tf.compat.v1.Session() as session:
    print("works", session.run(tf.constant(2.0) * 3))
print("keras loaded", "keras" in sys.modules)
"""


@pytest.mark.slow
@pytest.mark.parametrize("statement", ["import tensorflow", "import_tensorflow()"])
def test_ctrl_c_while_tensorflow_loads_is_one_keyboard_interrupt_after_the_load(statement):
    # Raised inside TensorFlow's import, it could come out as another error or end Python by
    # the signal; held back, it is a plain KeyboardInterrupt once TensorFlow has loaded.
    code = CTRL_C_DURING_IMPORT.format(
        imports="from nst_utils.quiet import import_tensorflow", delays=[0], statement=statement
    )
    done = _python("-c", code)
    lines = done.stdout.splitlines()
    assert done.returncode == 0, done.stderr
    assert lines[0].startswith("interrupted") and lines[0].endswith("True"), lines
    assert lines[1:] == ["handler restored True", "works 6.0", "keras loaded False"], lines


@pytest.mark.slow
def test_a_second_ctrl_c_while_tensorflow_loads_interrupts_at_once():
    code = CTRL_C_DURING_IMPORT.format(imports="", delays=[0, 0.05], statement="import tensorflow")
    held = _python(
        "-c", CTRL_C_DURING_IMPORT.format(imports="", delays=[0], statement="import tensorflow")
    )
    done = _python("-c", code)
    assert done.returncode == 0, done.stderr
    at_once, after_load = (float(r.stdout.split()[1]) for r in (done, held))
    assert at_once < after_load, (done.stdout, held.stdout)
    assert done.stdout.splitlines()[1:] == [
        "handler restored True",
        "works 6.0",
        "keras loaded False",
    ]


def test_a_sigint_handler_set_while_tensorflow_loads_is_left_in_place():
    import signal

    from nst_utils.quiet import _interrupt_after

    def mine(number, frame):
        pass

    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with _interrupt_after():
            assert signal.getsignal(signal.SIGINT) is not signal.default_int_handler  # held
            signal.signal(signal.SIGINT, mine)  # what the loading code chose stays
        assert signal.getsignal(signal.SIGINT) is mine
        with _interrupt_after():
            pass
        assert signal.getsignal(signal.SIGINT) is mine  # not Python's own: left alone
    finally:
        signal.signal(signal.SIGINT, before)


def test_tensorflow_s_deprecation_notices_are_dropped_once_and_other_records_kept():
    import logging

    from nst_utils.quiet import import_tensorflow

    logger = import_tensorflow().get_logger()
    import_tensorflow()  # a second call adds no second filter
    assert len(logger.filters) == len(set(map(id, logger.filters))) >= 1

    def record(message):
        return logging.LogRecord("tensorflow", logging.WARNING, __file__, 1, message, None, None)

    notice = "From f.py:1: disable_v2_behavior (from tensorflow) is deprecated and will be removed"
    assert not logger.filter(record(notice))
    assert logger.filter(record("Some other warning that a user must see"))
