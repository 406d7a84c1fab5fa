"""The output folder of ``covidct analyze``: one run owns it at a time, a run removes only what it created, and an
earlier analysis in it is replaced as a whole, never mixed with the new one (issue 24).

- Ownership: the run creates ``.covidct.lock`` (holding its process id) with an exclusive create. A second run into
  a folder whose lock belongs to a live process is refused (exit status 2) before it writes anything; a lock left by
  a process that no longer runs (killed with SIGKILL, a crash of the machine) is taken over, and that process's
  staging folder (named with its process id) is removed.
- Failure or interruption: the run's own staging folder and lock go; the output folder goes only if this run
  created it and nothing else is in it. Nothing another run or the user put there is touched.
- An earlier analysis: on success the files its ``report.json`` lists under ``files`` (for reports of versions
  before that list, the names an analysis writes: ``EARLIER_OUTPUTS``) are removed, then the new outputs move in. Other
  files of the user stay, and so does the input (the demo CT of an earlier run analysed again into its own folder).
"""

from __future__ import annotations

import errno
import fnmatch
import json
import os
import shutil
import tempfile
from pathlib import Path

from ..errors import InputError

LOCK_NAME = ".covidct.lock"
STAGING_PREFIX = ".covidct-"
#: What an analysis wrote before reports listed their files (report.json "files").
EARLIER_OUTPUTS = ("report.json", "report.html", "*.seg.nrrd", "heatmap-*.nrrd", "demo-ct.nrrd", "demo-truth-*.nrrd")


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    except OSError:
        return False
    return True


def _lock_owner(lock: Path) -> int | None:
    try:
        return int(lock.read_text(encoding="ascii").strip() or "0")
    except (OSError, ValueError):
        return None


def listed_files(folder: Path) -> list[str] | None:
    """The file names ``folder/report.json`` lists under ``files``; None without a readable report or list."""
    try:
        listed = json.loads((folder / "report.json").read_text(encoding="utf-8")).get("files")
    except (OSError, ValueError, AttributeError):
        return None
    if isinstance(listed, list) and all(isinstance(n, str) and n for n in listed):
        return listed
    return None


class OutputFolder:
    """``with OutputFolder(outdir) as folder:`` claims ``outdir``; ``folder.staging`` is where the run writes;
    ``folder.commit()`` moves the outputs into place once the whole run has succeeded."""

    def __init__(self, path: Path, keep: tuple[Path, ...] = ()):
        self.path = Path(path)
        self._keep = {Path(p).resolve() for p in keep}  # the inputs: never removed, even if an earlier run wrote them
        self.created = False
        self.staging: Path | None = None
        self._lock: Path | None = None

    def __enter__(self) -> "OutputFolder":
        self.created = not self.path.exists()
        self.path.mkdir(parents=True, exist_ok=True)
        try:
            self._claim()
            self.staging = Path(tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}{os.getpid()}-", dir=self.path))
        except BaseException:
            self._release(success=False)
            raise
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self._release(success=exc_type is None)

    # -- ownership -------------------------------------------------------------------------------------------------
    def _claim(self) -> None:
        lock = self.path / LOCK_NAME
        for _ in range(3):
            try:
                fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                owner = _lock_owner(lock)
                if owner is not None and owner != os.getpid() and _alive(owner):
                    raise InputError(self.path, f"is in use by another covidct run (process {owner}); wait for it "
                                                "to finish or choose another output folder") from None
                try:  # a stale lock: its process is gone (killed); so is what it was writing
                    lock.unlink()
                except FileNotFoundError:
                    pass
                if owner:
                    for staging in self.path.glob(f"{STAGING_PREFIX}{owner}-*"):
                        shutil.rmtree(staging, ignore_errors=True)
                continue
            with os.fdopen(fd, "w", encoding="ascii") as f:
                f.write(f"{os.getpid()}\n")
            self._lock = lock
            return
        raise InputError(self.path, "could not take the output folder's lock (another run keeps taking it)")

    def _release(self, success: bool) -> None:
        if self.staging is not None:
            shutil.rmtree(self.staging, ignore_errors=True)
            self.staging = None
        if self._lock is not None:
            if _lock_owner(self._lock) == os.getpid():
                self._lock.unlink(missing_ok=True)
            self._lock = None
        if self.created and not success:
            try:
                self.path.rmdir()  # only if empty: what others put there stays
            except OSError as exc:
                if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOENT):
                    raise

    # -- replacing an earlier analysis -----------------------------------------------------------------------------
    def earlier_outputs(self) -> list[Path]:
        """The files of an earlier analysis in this folder (empty when there is none)."""
        if not (self.path / "report.json").is_file():
            return []
        listed = listed_files(self.path)
        if listed is not None:
            names = {n for n in listed if "/" not in n and "\\" not in n and not n.startswith(".")}
        else:
            names = {p.name for p in self.path.iterdir()
                     if p.is_file() and any(fnmatch.fnmatch(p.name, pat) for pat in EARLIER_OUTPUTS)}
        return sorted(self.path / n for n in names
                      if (self.path / n).is_file() and (self.path / n).resolve() not in self._keep)

    def commit(self) -> None:
        """Replace any earlier analysis by this run's outputs (staging -> folder)."""
        for old in self.earlier_outputs():
            old.unlink(missing_ok=True)
        for item in self.staging.iterdir():
            item.replace(self.path / item.name)
