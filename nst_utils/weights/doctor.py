"""The weights doctor: everything about a VGG-19 weights file that decides whether nst can use it.

`diagnose(path)` gathers size, MD5 (and whether it is a published one), format, each conv
layer's shape and dtype, the mean pixel and the cache's state into a `WeightsReport`;
`format_report` renders it for people. It reuses the loader's own checks and messages (`mat`,
`sources`), so the doctor and `load_weights` never disagree about a file; it tells kinds of
damage apart by their exception class.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from ..settings import DEFAULTS
from ..errors import TruncatedWeightsError, WeightsError
from .cache import cache_status
from .mat import conv_layer_checks, detect_format, mean_pixel, read_mat
from .sources import (
    WEIGHTS_SOURCES,
    check_weights_path,
    fetch_command_for,
    file_md5,
    published_format,
    unreadable_message,
)

#: How far the file's mean pixel may stray from the one nst subtracts before the doctor says so.
MEAN_TOLERANCE = 0.01


@dataclasses.dataclass
class WeightsReport:
    """What the doctor found; `problems` lists what stops the file from serving."""

    path: Path
    size: int | None = None
    md5: str | None = None
    published: str | None = None  # the format whose published MD5 this file has, if any
    format: str = "unknown"
    layers: list = dataclasses.field(default_factory=list)  # mat.LayerCheck, one per conv
    mean_pixel: tuple | None = None
    problems: list = dataclasses.field(default_factory=list)
    notes: list = dataclasses.field(default_factory=list)
    cache: str | None = None

    @property
    def usable(self) -> bool:
        return not self.problems

    @property
    def verdict(self) -> str:
        if self.problems:
            count = len(self.problems)
            return f"NOT usable ({count} problem{'s' if count > 1 else ''})"
        if self.published:
            return f"usable: the published {self.published}-format file"
        return "usable, but not the published file (its MD5 matches no published one)"

    def as_dict(self) -> dict:
        """The report as plain JSON-ready values."""
        return {
            "path": str(self.path),
            "size": self.size,
            "md5": self.md5,
            "published": self.published,
            "format": self.format,
            "layers": [
                {
                    "name": c.name,
                    "expected_shape": list(c.expected_shape),
                    "kernel_shape": None if c.kernel_shape is None else list(c.kernel_shape),
                    "bias_shape": None if c.bias_shape is None else list(c.bias_shape),
                    "dtype": c.dtype,
                    "problem": c.problem,
                }
                for c in self.layers
            ],
            "mean_pixel": None if self.mean_pixel is None else list(self.mean_pixel),
            "usable": self.usable,
            "verdict": self.verdict,
            "problems": list(self.problems),
            "notes": list(self.notes),
            "cache": self.cache,
        }


def diagnose(
    path, *, named_by: str | None = None, check_cache: bool = True, cache_dir=None
) -> WeightsReport:
    """Examine the weights file at `path` without raising for bad files.

    named_by: what chose the path ('NST_WEIGHTS', ...), for the line about a missing file;
    check_cache and cache_dir: whether and where its weights cache is looked for (None: the
    default places).
    """
    report = WeightsReport(Path(path).expanduser())
    try:
        path = check_weights_path(path, named_by)
        report.size = path.stat().st_size
        report.md5 = file_md5(path)
    except WeightsError as exc:
        report.problems.append(str(exc))
        return report
    except OSError as exc:
        report.problems.append(unreadable_message(path, exc))
        return report
    report.published = published_format(report.md5)
    if report.size == 0:
        report.problems.append(f"{path} is empty; delete it and run `{fetch_command_for(path)}`")
        return report
    try:
        mat = read_mat(path)
        report.format = detect_format(mat)
        report.layers = conv_layer_checks(mat)
    except TruncatedWeightsError as exc:
        report.problems.append(str(exc))
        _note_size(report)
        return report
    except WeightsError as exc:
        report.problems.append(str(exc))
        return report
    report.problems.extend(check.problem for check in report.layers if check.problem)
    report.mean_pixel = mean_pixel(mat)
    _note_mean(report)
    if report.usable:
        _note_origin(report)
        if check_cache:
            report.cache = cache_status(path, cache_dir)
    return report


def _note_size(report: WeightsReport) -> None:
    """A note when a damaged file is smaller than a published one: the usual sign of a cut
    download."""
    sizes = [s["size"] for s in WEIGHTS_SOURCES.values() if s["size"]]
    if report.size is not None and any(report.size < size for size in sizes):
        report.notes.append(
            f"it has {report.size:,} bytes, fewer than the published "
            f"{max(sizes):,}: probably a cut download"
        )


def _note_mean(report: WeightsReport) -> None:
    if report.mean_pixel is None:
        report.notes.append(
            f"the file records no mean pixel; nst subtracts the mean pixel {DEFAULTS.means} anyway"
        )
    elif any(abs(a - b) > MEAN_TOLERANCE for a, b in zip(report.mean_pixel, DEFAULTS.means)):
        report.notes.append(
            f"the file's mean pixel differs from the one nst subtracts, {DEFAULTS.means}; "
            "this may not be the ImageNet VGG-19"
        )


def _note_origin(report: WeightsReport) -> None:
    if report.published:
        return
    report.notes.append(
        "its MD5 matches neither published file (new "
        f"{WEIGHTS_SOURCES['new']['md5']}, old {WEIGHTS_SOURCES['old']['md5']}): fine for test "
        "files and your own copies, but if you downloaded it from MatConvNet it is damaged; "
        f"then delete it and run `{fetch_command_for(report.path)}`"
    )
    if report.format == "unknown":
        report.notes.append(
            "its layout matches no known MatConvNet format, but all 16 conv "
            "layers are present and sound"
        )


def _shape(shape) -> str:
    return "-" if shape is None else "x".join(str(n) for n in shape)


def format_report(report: WeightsReport) -> str:
    """The report as text for a terminal: facts, a table of the 16 conv layers, the verdict."""
    lines = [f"file:       {report.path}"]
    if report.size is not None:
        lines.append(f"size:       {report.size:,} bytes")
    if report.md5 is not None:
        match = (
            f"the published {report.published}-format MD5"
            if report.published
            else "no published MD5"
        )
        lines.append(f"md5:        {report.md5} ({match})")
    if report.size is not None:
        lines.append(f"format:     {report.format}")
    if report.layers:
        ok = sum(1 for check in report.layers if check.problem is None)
        lines.append(f"conv layers: {ok} of {len(report.layers)} sound")
        for check in report.layers:
            status = check.problem or "ok"
            lines.append(
                f"  {check.name:8} kernel {_shape(check.kernel_shape):13} "
                f"bias {_shape(check.bias_shape):7} {check.dtype or '-':9} {status}"
            )
    if report.layers:
        mean = (
            "none recorded"
            if report.mean_pixel is None
            else "(" + ", ".join(f"{v:.3f}" for v in report.mean_pixel) + ")"
        )
        lines.append(f"mean pixel: {mean}")
    if report.cache is not None:
        lines.append(f"cache:      {report.cache}")
    lines.append(f"verdict:    {report.verdict}")
    lines.extend(f"  problem: {problem}" for problem in report.problems)
    lines.extend(f"  note: {note}" for note in report.notes)
    return "\n".join(lines)
