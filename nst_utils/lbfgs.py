"""L-BFGS on the generated image through `scipy.optimize.minimize`, with the session's loss and
gradient: an alternative to Adam that `training.optimize` drives like any training op.

SciPy runs its own loop, so `LBFGS.drive` hands each finished iteration to the run's tracker
(`training.RunTracker`), which reports, saves snapshots, checks for NaN and saves the result
exactly as for Adam. One iteration may evaluate the cost several times (line search).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from .training import assign_image

tf1 = tf.compat.v1


class LBFGS:
    """Minimise `loss` over `variable` (the model's input) with SciPy's L-BFGS-B.

    costs: the tensors reported per iteration, (J, J_content, J_style); loss is costs[0] unless
    given. The gradient is built here, once: d loss / d variable, shape (1, H, W, 3).
    """

    def __init__(self, sess, variable, costs, loss=None, memory: int = 10):
        self.sess, self.variable, self.costs = sess, variable, list(costs)
        loss = self.costs[0] if loss is None else loss
        self.gradient = tf.gradients(loss, variable)[0]
        self.memory = memory
        self._last = None  # (x as float32 image, cost values) of the latest evaluation

    def _evaluate(self, x):
        """Costs and gradient at the flat float64 point x; keeps them for the iteration's record."""
        image = np.asarray(x, dtype=np.float32).reshape(self.variable.get_shape())
        assign_image(self.sess, self.variable, image)
        *values, gradient = self.sess.run(self.costs + [self.gradient])
        values = [float(v) for v in values]
        self._last = (image, values)
        return values, gradient

    def _values_at(self, image):
        """The cost values of `image`, from the latest evaluation when it was there."""
        if self._last is not None and np.array_equal(self._last[0], image):
            return self._last[1]
        assign_image(self.sess, self.variable, image)
        return [float(v) for v in self.sess.run(self.costs)]

    def drive(self, tracker, num_iterations: int):
        """Run up to num_iterations L-BFGS iterations, reporting each one to `tracker`."""
        from scipy.optimize import minimize

        start_image = self.sess.run(self.variable)
        first = tracker.result.iterations  # above 0 in a resumed run
        if num_iterations <= first or tracker.stop_requested():
            return
        state = {"i": first, "image": start_image, "values": None}

        def fun(x):
            values, gradient = self._evaluate(x)
            if not np.isfinite(values[0]):  # let the line search back off; the record checks
                return np.inf, np.zeros(x.size)
            return values[0], np.asarray(gradient, dtype=np.float64).reshape(-1)

        def callback(intermediate_result):
            i = state["i"]
            new_image = np.asarray(intermediate_result.x, dtype=np.float32).reshape(
                start_image.shape
            )
            new_values = self._values_at(new_image)  # also leaves new_image in the variable
            if not tracker.completed(i, state["image"], state["values"]):
                raise StopIteration
            state.update(i=i + 1, image=new_image, values=new_values)
            if i + 1 >= num_iterations or tracker.stop_requested():
                raise StopIteration

        state["values"] = self._values_at(start_image)
        if not np.isfinite(state["values"]).all():
            tracker.completed(first, start_image, state["values"])  # records the non-finite stop
            return
        minimize(
            fun,
            start_image.astype(np.float64).reshape(-1),
            jac=True,
            method="L-BFGS-B",
            callback=callback,
            options={
                "maxiter": num_iterations - first,
                "maxcor": self.memory,
                "ftol": 0.0,
                "gtol": 0.0,
                "maxfun": 20 * (num_iterations - first) + 20,
            },
        )
        # SciPy may end on a point it evaluated last (a failed line search); keep the accepted one.
        assign_image(self.sess, self.variable, state["image"])
