"""Sessions with nst's thread settings, and the settings' validation in Settings."""

import pytest

from nst_utils.settings import DEFAULTS
from nst_utils.errors import ConfigError
from nst_utils.session import make_session, session_config


def test_session_config_carries_the_thread_settings():
    proto = session_config(DEFAULTS.replace(intra_op_threads=2, inter_op_threads=1))
    assert proto.intra_op_parallelism_threads == 2
    assert proto.inter_op_parallelism_threads == 1
    assert session_config().inter_op_parallelism_threads == DEFAULTS.inter_op_threads == 1


def test_make_session_runs_on_the_given_graph():
    import tensorflow as tf

    graph = tf.Graph()
    with graph.as_default():
        total = tf.reduce_sum(tf.constant([1.5, 2.5]))
    with make_session(graph) as sess:
        assert sess.graph is graph
        assert sess.run(total) == 4.0


@pytest.mark.parametrize(
    "name, value", [("inter_op_threads", -1), ("intra_op_threads", 1.5), ("inter_op_threads", True)]
)
def test_bad_thread_settings_are_refused(name, value):
    with pytest.raises(ConfigError, match=f"{name} must be a whole number >= 0"):
        DEFAULTS.replace(**{name: value})
