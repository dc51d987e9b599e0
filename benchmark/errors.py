"""Errors a user can act on: the CLI prints their message as one line and exits with their code."""
from __future__ import annotations


class UserError(Exception):
    """Bad input or a failed precondition; ``str(err)`` says what and how to fix it."""

    exit_code = 2

    def __init__(self, message: str, exit_code: int | None = None):
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code
