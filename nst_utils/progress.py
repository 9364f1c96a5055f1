"""The command line's progress bar: iteration, time left and the three costs, on stderr.

The original's every-N printout (training.print_report) is printed above the bar without
breaking it.
"""

from __future__ import annotations

import sys

from .training import print_report


#: The bar of a big print: its stage, then the iterations done (whole ones) and the time left,
#: which counts the tiles done inside the current iteration.
STAGED_FORMAT = "{desc}: {percentage:3.0f}%|{bar}| [{elapsed}<{remaining}{postfix}]"


class ProgressBar:
    """tqdm bar over num_iterations (from `initial` when a run resumes); on_step and report
    plug into training.Hooks."""

    def __init__(self, num_iterations: int, enabled: bool = True, stream=None, initial: int = 0):
        from tqdm import tqdm

        self.bar = tqdm(
            total=num_iterations,
            disable=not enabled,
            file=stream or sys.stderr,
            unit="it",
            dynamic_ncols=True,
            leave=True,
            initial=initial,
        )
        self._steps, self._costs, self._staged = initial, "", False

    def on_step(self, i, total, content, style):
        self._costs = f"total {total:.4g}  content {content:.4g}  style {style:.4g}"
        self._steps += 1
        self._show(self._steps)

    def on_stage(self, text: str, fraction: float):
        """A long iteration's stage ('scale 2/3, 1500x1125, tile 5/12 of pass 1/2') before the
        bar, and the share of the iteration done: the bar and its ETA move with the tiles."""
        self._staged = True
        if self.bar.disable:
            return
        self.bar.bar_format = STAGED_FORMAT
        changed = text != self.bar.desc
        self.bar.set_description_str(text, refresh=False)
        self._show(self._steps + min(max(fraction, 0.0), 0.999))
        if changed:  # at once: tqdm shows an update only after its minimum interval
            self.bar.refresh()

    def _show(self, progress: float):
        """The bar at `progress` iterations (a fraction inside a staged iteration)."""
        counted = f"{self._steps}/{self.bar.total} it  " if self._staged else ""
        self.bar.set_postfix_str(counted + self._costs, refresh=False)
        self.bar.update(progress - self.bar.n)

    def report(self, i, total, content, style):
        with self.bar.external_write_mode():
            print_report(i, total, content, style)
            sys.stdout.flush()

    def close(self):
        self.bar.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False
