"""How many CPU threads to compute on: the cores that other processes leave free.

Torch's default is a thread per core. Beside a busy process, one of those threads shares a
core, and every small parallel step of an LSTM waits for it to get its turn: training ran
tens of times slower than on a single thread. Making OpenMP's threads sleep instead of spin
while they wait (OMP_WAIT_POLICY=PASSIVE) halves that loss but costs half the speed on an
idle machine, where the steps are too short to wake a sleeping thread for. So nerlstm
counts the cores that are free, from the kernel's CPU time counters, and uses that many
threads, looking again while it runs. No torch here: the CLI asks before torch loads.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass

# The shortest interval whose CPU time counters (10 ms ticks) say enough to act on.
MIN_SAMPLE_SECONDS = 0.05


@dataclass
class CpuSample:
    """The machine's busy and total CPU time, and this process's own, at one moment."""

    busy: int  # clock ticks, all CPUs
    total: int
    own: int
    cpus: int  # CPUs the counters cover
    when: float


def cpu_sample() -> CpuSample | None:
    """The counters now, or None where the kernel does not publish them (not Linux)."""
    try:
        with open("/proc/stat", encoding="ascii") as stat:
            lines = stat.read().splitlines()
        with open("/proc/self/stat", encoding="ascii") as own_stat:
            # the command name (field 2) may hold spaces; the fields after it do not
            own_fields = own_stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    ticks = [int(value) for value in lines[0].split()[1:]]
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)  # idle and waiting for I/O
    total = sum(ticks[:8])  # guest time is already counted in user time
    cpus = sum(1 for line in lines if line.startswith("cpu") and line[3:4].isdigit())
    own = int(own_fields[11]) + int(own_fields[12])  # utime and stime, all threads
    return CpuSample(total - idle, total, own, max(cpus, 1), time.monotonic())


def usable_cores() -> int:
    """The CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def cores_busy_elsewhere(before: CpuSample, after: CpuSample) -> float | None:
    """How many cores other processes kept busy between two samples, or None if the
    interval is too short to tell."""
    elapsed = (after.total - before.total) / after.cpus  # ticks per CPU
    if after.when - before.when < MIN_SAMPLE_SECONDS or elapsed <= 0:
        return None
    others = (after.busy - before.busy) - (after.own - before.own)
    return max(0.0, others / elapsed)


def free_threads(before: CpuSample | None, after: CpuSample | None, most: int) -> int | None:
    """Threads to use: the cores left free by other processes between the samples, at least
    one and at most ``most``; None when the samples cannot tell."""
    if before is None or after is None:
        return None
    busy = cores_busy_elsewhere(before, after)
    if busy is None:
        return None
    free = min(usable_cores(), after.cpus) - busy
    return max(1, min(most, int(free + 0.5)))


class ThreadGovernor:
    """Keeps a process's compute threads at the number of free cores, as other processes
    come and go.

    Args:
        most: the most threads to use (torch's default: a thread per core).
        apply: sets the number of threads (``torch.set_num_threads``).
        since: a sample taken earlier (at start-up), so that the first look needs no wait.
    """

    def __init__(self, most: int, apply: Callable[[int], None],
                 since: CpuSample | None = None) -> None:
        self.most, self.apply = max(1, most), apply
        self.last = since or cpu_sample()
        self.threads = self.most

    def look(self) -> int:
        """Sample the counters, set the threads for the time since the last look, and
        return them."""
        now = cpu_sample()
        chosen = free_threads(self.last, now, self.most)
        if chosen is None:  # too soon to tell: keep the interval growing
            return self.threads
        self.last = now
        if chosen != self.threads:
            self.threads = chosen
            self.apply(chosen)
        return self.threads


STARTED = cpu_sample()  # when nerlstm was imported: the first interval to look back on
