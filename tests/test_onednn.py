"""nst turns oneDNN on for TensorFlow unless the user says otherwise, and the published values
come out the same with it on, off, and limited to AVX2 (as on a CPU without AVX-512)."""

import json
import os
import subprocess
import sys

import pytest

from limits import HANG_SECONDS
from nst_utils.config import PROJECT_ROOT
from test_reference import check_published

CHILD = """
import json, os
from nst_utils import reference
from tensorflow.python.util import _pywrap_util_port as port
values = reference.reference_values()
print(json.dumps({"setting": os.environ.get("TF_ENABLE_ONEDNN_OPTS"),
                  "onednn": bool(port.IsMklEnabled()), "values": values}))
"""


def run_child(setting, extra=None):
    env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    if setting is not None:
        env["TF_ENABLE_ONEDNN_OPTS"] = setting
    env.update(extra or {})
    done = subprocess.run(
        [sys.executable, "-c", CHILD],
        capture_output=True,
        text=True,
        env=env,
        cwd=PROJECT_ROOT,
        timeout=HANG_SECONDS,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow
@pytest.mark.parametrize(
    "setting, extra, on",
    [
        (None, None, True),  # nst's default, whatever TensorFlow's is on this CPU
        ("0", None, False),  # the user's own setting wins
        ("1", None, True),
        (None, {"ONEDNN_MAX_CPU_ISA": "AVX2"}, True),  # oneDNN as on an AVX2-only CPU
    ],
)
def test_published_values_with_onednn_on_and_off(setting, extra, on):
    child = run_child(setting, extra)
    assert child["setting"] == ("1" if setting is None else setting)
    assert child["onednn"] is on
    check_published(child["values"])
