"""Errors that front ends turn into exit codes (docs/CONTRACTS.md: 2 bad input or usage, 1 internal error)."""

from __future__ import annotations

import argparse
from pathlib import Path


class InputError(Exception):
    """Bad input or usage: reported as one line ``<path>: <problem>`` and exit status 2."""

    def __init__(self, path: str | Path | None, problem: str):
        self.path = None if path is None else str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}" if self.path else problem)


class ModelUnavailableError(InputError):
    """A model or subcommand that this version does not provide (exit status 2, never pretends)."""

    def __init__(self, name: str):
        super().__init__(None, f"model {name} is not available in this version")


class LungsNotFoundError(InputError):
    """The lung finder found no lung in a readable image. A volume with no lungs (an abdominal CT) is refused with
    exit status 2; a 2-D image goes on without a lung mask and its report says so (pipeline/lungs.py)."""


class Terminated(BaseException):
    """SIGTERM (``kill``, ``timeout``, a front end's cancel) raised in the main thread, so that every ``finally``
    and context manager cleans up as for Ctrl-C (issue 24): exit status 143 (``covidct`` and the trainer scripts)."""


def raise_terminated(signum, frame):
    """A SIGTERM handler: raises ``Terminated``."""
    raise Terminated()


class UsageParser(argparse.ArgumentParser):
    """argparse whose usage errors are InputErrors: one line and exit status 2 (``covidct`` and the trainer
    scripts)."""

    def error(self, message: str):  # noqa: D102
        raise InputError(None, f"{message} (see `{self.prog} --help`)")
