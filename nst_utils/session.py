"""TensorFlow sessions set up for this network on a CPU: thread counts from the configuration.

VGG-19's training step is a chain of large ops (each conv already uses every core through
oneDNN), so running two at once only makes them fight for the same cores and caches. By
default one op runs at a time (`inter_op_threads=1`) with one thread per core inside it.

TensorFlow sizes its thread pools once per process, from the first session it creates, and
shares them afterwards: create nst's session before any other.
"""

from __future__ import annotations

import tensorflow as tf

from .settings import DEFAULTS, Settings

tf1 = tf.compat.v1


def session_config(config: Settings | None = None) -> "tf1.ConfigProto":
    """The `ConfigProto` for `config`'s thread settings (0 lets TensorFlow choose)."""
    from tensorflow.core.protobuf import rewriter_config_pb2

    config = config or DEFAULTS
    proto = tf1.ConfigProto(
        intra_op_parallelism_threads=config.intra_op_threads,
        inter_op_parallelism_threads=config.inter_op_threads,
        allow_soft_placement=True,
    )
    # One round of graph optimisation per new set of fetches: a second round finds nothing
    # more in these graphs (the same ops, the same results) and costs start-up time.
    proto.graph_options.rewrite_options.meta_optimizer_iterations = (
        rewriter_config_pb2.RewriterConfig.ONE
    )
    # The memory optimiser plans swapping to host memory and recomputation for accelerators;
    # on a CPU it changes nothing here and its static analysis costs 20 to 40 ms per new set of
    # fetches (measured on the training step at 400x300).
    proto.graph_options.rewrite_options.memory_optimization = (
        rewriter_config_pb2.RewriterConfig.NO_MEM_OPT
    )
    return proto


def make_session(graph=None, config: Settings | None = None) -> "tf1.Session":
    """A `tf.compat.v1.Session` on `graph` (default: the current default graph) with nst's
    thread settings. Use it as the original used `tf.InteractiveSession()`/`tf.Session()`."""
    return tf1.Session(graph=graph, config=session_config(config))
