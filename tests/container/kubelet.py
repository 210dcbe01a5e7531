"""What the kubelet does to a running pod's local storage, played beside a container: each
pod's emptyDir is a host folder (disk-backed, as on a GKE node: not capped by its filesystem,
and not counted against the container's memory as a tmpfs's pages would be), measured every
half second; when it outgrows its limit the pod is evicted, as the kubelet evicts it.

The kubelet (kubernetes/kubernetes pkg/kubelet/eviction/eviction_manager.go):
- `synchronize` runs every `evictionMonitoringPeriod` (10 s, pkg/kubelet/kubelet.go) and, with
  LocalStorageCapacityIsolation on (the default), first calls `localStorageEviction`: per pod,
  `emptyDirLimitEviction` (an emptyDir's used bytes above its `sizeLimit`), then
  `podEphemeralStorageLimitEviction` (the pod's emptyDirs, logs and writable layers above
  the sum of its containers' `ephemeral-storage` limits), then
  `containerEphemeralStorageLimitEviction` (a container's logs and writable layer above its
  own limit: nothing here, the root filesystem is read-only).
- the usage is measured, not enforced by the filesystem: a write past the limit succeeds
  (no ENOSPC), and the pod is evicted at the next check; a step that grows and shrinks
  between two checks is never seen.
- `evictPod` with `immediateEvictionGracePeriodSeconds` (1 s): SIGTERM, SIGKILL a second
  later; the pod ends Failed with reason `Evicted` and the message
  `emptyDirMessageFmt = "Usage of EmptyDir volume %q exceeds the limit %q. "` or
  `podEphemeralStorageMessageFmt = "Pod ephemeral local storage usage exceeds the total limit
  of containers %s. "` (pkg/kubelet/eviction/helpers.go).
Argo then fails the node with the pod's message (argo-workflows v4.1.2
workflow/controller/operator.go:1786-1788). Its exit code is the main container's terminated
one when the kubelet reports it (operator.go:1612-1617 and getExitCode, 1711): the 143/137
of the kill, or 137 with reason ContainerStatusUnknown once the container is gone, as GKE
shows evicted pods (kubernetes/kubernetes#122160); else none, "-1" to the retry expression
(operator.go:2160-2164). The model records none; the retry expression retries all three.
Docs: https://kubernetes.io/docs/concepts/configuration/manage-resources-containers/
#local-ephemeral-storage ("If a Pod's ephemeral storage usage exceeds its limit, the kubelet
evicts the Pod"; an emptyDir above its sizeLimit likewise).

Half a second here instead of 10 s: the steps of the tests take seconds, not hours; a model
that checks more often is stricter (it sees a short peak the kubelet could miss). Not
counted: the pod's logs, and Argo's init and wait containers' limits, which add to the pod's
total on GKE (a smaller total here: stricter again).

The same loop samples the container's memory from its cgroup (v1 or v2): the peak of its
anonymous memory (what an OOM kill is about: page cache is reclaimed first) and the
cgroup's own high-water mark (page cache included), for the test's report. Best effort:
with docker the container's pid may live in another pid namespace; then no figure.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

from tests.container.podman import engine

CHECK_SECONDS = 0.5
EVICTION_GRACE_SECONDS = 1  # eviction_manager.go immediateEvictionGracePeriodSeconds
EMPTY_DIR_MESSAGE = 'Usage of EmptyDir volume "{volume}" exceeds the limit "{limit}". '
POD_MESSAGE = "Pod ephemeral local storage usage exceeds the total limit of containers {limit}. "


@dataclass(frozen=True)
class EmptyDir:
    volume: str  # the volume's name, as the eviction message gives it
    host: Path  # the folder that backs it
    size_limit: int | None  # bytes
    size_limit_text: str | None  # as rendered, as the message quotes it (Quantity.String())


@dataclass(frozen=True)
class LocalStorage:
    """A pod's local storage and its limits."""

    empty_dirs: tuple[EmptyDir, ...]
    ephemeral_limit: int | None = None  # the sum of its containers' ephemeral-storage limits
    ephemeral_limit_text: str | None = None


def used_bytes(folder: Path) -> int:
    """Disk blocks in use under the folder, as `du` (the kubelet's fsquota-less measure)."""
    total = 0
    stack = [folder]
    while stack:
        try:
            entries = list(os.scandir(stack.pop()))
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            continue
        for entry in entries:
            try:
                info = entry.stat(follow_symlinks=False)
            except FileNotFoundError:  # removed between the listing and the stat
                continue
            total += info.st_blocks * 512
            if entry.is_dir(follow_symlinks=False):
                stack.append(Path(entry.path))
    return total


def eviction(storage: LocalStorage, used: dict[str, int]) -> str | None:
    """The kubelet's message when these usages evict the pod (localStorageEviction's order:
    each emptyDir against its sizeLimit, then the pod's total against its limit); None
    when they do not. Strictly above the limit (`used.Cmp(*size) > 0`)."""
    for empty_dir in storage.empty_dirs:
        if empty_dir.size_limit and used[empty_dir.volume] > empty_dir.size_limit:
            return EMPTY_DIR_MESSAGE.format(volume=empty_dir.volume, limit=empty_dir.size_limit_text)
    if storage.ephemeral_limit and sum(used.values()) > storage.ephemeral_limit:
        return POD_MESSAGE.format(limit=storage.ephemeral_limit_text)
    return None


def _memory_files(container: str) -> tuple[Path, bool] | None:
    """The container's memory cgroup folder, and whether it is cgroup v2."""
    proc = engine("inspect", "--format", "{{.State.Pid}}", container, check=False)
    pid = proc.stdout.strip()
    try:
        lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
    except (FileNotFoundError, PermissionError, ValueError):
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if "memory" in controllers.split(","):
            return Path("/sys/fs/cgroup/memory") / path.lstrip("/"), False
        if controllers == "":
            folder = Path("/sys/fs/cgroup") / path.lstrip("/")
            if (folder / "memory.stat").is_file():
                return folder, True
    return None


@dataclass
class Usage:
    """What one pod used: peaks of its scratch and of its memory (bytes)."""

    scratch_peak: int = 0
    anon_peak: int | None = None
    cgroup_peak: int | None = None  # the cgroup's high-water mark, page cache included
    evicted: str | None = None  # the kubelet's message


@dataclass
class PodWatch:
    """The eviction manager's loop for one pod, in a thread while the container runs."""

    container: str
    storage: LocalStorage
    usage: Usage = field(default_factory=Usage)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"kubelet-{self.container}", daemon=True)
        self._memory: tuple[Path, bool] | None = None

    def start(self) -> PodWatch:
        self._memory = _memory_files(self.container)
        self._thread.start()
        return self

    def stop(self) -> Usage:
        self._stop.set()
        self._thread.join()
        return self.usage

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.check()
            self._stop.wait(CHECK_SECONDS)

    def check(self) -> None:
        self._sample_memory()
        used = {d.volume: used_bytes(d.host) for d in self.storage.empty_dirs}
        self.usage.scratch_peak = max(self.usage.scratch_peak, sum(used.values()))
        if self.usage.evicted is None and (message := eviction(self.storage, used)):
            self.usage.evicted = message
            # SIGTERM through the image's init, SIGKILL after the eviction's grace period
            engine("stop", "-t", str(EVICTION_GRACE_SECONDS), self.container, check=False)

    def _sample_memory(self) -> None:
        if self._memory is None:
            return
        folder, v2 = self._memory
        try:
            stat = dict(line.split() for line in (folder / "memory.stat").read_text().splitlines())
            anon = int(stat["anon"] if v2 else stat["total_rss"])
            peak_file = folder / ("memory.peak" if v2 else "memory.max_usage_in_bytes")
            peak = int(peak_file.read_text()) if peak_file.is_file() else None
        except (FileNotFoundError, KeyError, ValueError, OSError):
            return  # the container ended between two samples
        self.usage.anon_peak = max(self.usage.anon_peak or 0, anon)
        if peak is not None:
            self.usage.cgroup_peak = max(self.usage.cgroup_peak or 0, peak)
