"""This process's resident memory, read from /proc: the figures every benchmark reports.

Standard library only, so the PyTorch loop (torch_loop.py) and nst's loop (memory.py) measure
themselves with the same code without importing each other.
"""

from __future__ import annotations

import os
import resource
import sys
import time


def peak_rss_mb() -> float:
    """This process's peak resident memory in MB.

    On Linux, VmHWM of /proc/self/status: ru_maxrss is kept across execve, so a child started
    by a large parent would report the parent's size as its own peak.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1 << 20) if sys.platform == "darwin" else peak / 1024


def resident_split_mb() -> dict | None:
    """This process's resident memory now, in MB: {"rss", "anon", "file"}, where "file" is the
    pages of mapped files (libraries' code and data, memory-mapped weights) and "anon" the
    rest; None without /proc. Taken right after importing a framework, it shows what the
    framework itself holds before any work."""
    fields = {}
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                key, _, value = line.partition(":")
                if key in ("VmRSS", "RssAnon", "RssFile", "RssShmem"):
                    fields[key] = int(value.split()[0]) / 1024
    except OSError:
        return None
    if len(fields) < 4:
        return None
    return {
        "rss": round(fields["VmRSS"], 1),
        "anon": round(fields["RssAnon"], 1),
        "file": round(fields["RssFile"] + fields["RssShmem"], 1),
    }


class AnonymousPeak:
    """The peak of this process's anonymous resident memory (RSS less file-backed and shared
    pages), sampled every millisecond by a daemon thread; None where /proc is missing.

    Anonymous memory is what a machine without swap cannot give back: file-backed pages, such
    as a library's code, the kernel drops and reads again when memory runs short, but VmHWM
    counts them. Sampling can miss a peak shorter than a millisecond; both loops the benchmark
    compares are sampled the same way.
    """

    def __init__(self, interval=0.001):
        import threading

        self.peak_pages, self.interval = None, interval
        self._page = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
        try:
            self._statm = open("/proc/self/statm", "rb", buffering=0)
        except OSError:
            return
        self.peak_pages = 0
        threading.Thread(target=self._sample, daemon=True).start()

    def _sample(self):
        while True:
            self._statm.seek(0)
            fields = self._statm.read().split()
            self.peak_pages = max(self.peak_pages, int(fields[1]) - int(fields[2]))
            time.sleep(self.interval)

    def mb(self):
        return (
            None if self.peak_pages is None else round(self.peak_pages * self._page / (1 << 20), 1)
        )
