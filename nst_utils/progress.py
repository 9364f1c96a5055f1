"""The command line's progress bar: iteration, time left and the three costs, on stderr.

The original's every-N printout (training.print_report) is printed above the bar without
breaking it.
"""

from __future__ import annotations

import sys

from .training import print_report


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

    def on_step(self, i, total, content, style):
        self.bar.set_postfix_str(
            f"total {total:.4g}  content {content:.4g}  style {style:.4g}", refresh=False
        )
        self.bar.update(1)

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
