"""Errors a user can act on: the CLI prints their message as one line and exits with their code."""
from __future__ import annotations


class UserError(Exception):
    """Bad input or a failed precondition; ``str(err)`` says what and how to fix it."""

    exit_code = 2

    def __init__(self, message: str, exit_code: int | None = None):
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


def first_line(err: BaseException) -> str:
    """The first non-empty line of ``err``'s message, or its type name when it has none: what a
    one-line report shows of an exception (multi-line messages and empty ones both stay one line).
    """
    for line in str(err).splitlines():
        if line.strip():
            return line.strip()
    return type(err).__name__


def one_line(err: BaseException) -> str:
    """``first_line(err)`` prefixed by the exception's type (``ValueError: ...``), except for a
    :class:`UserError` (its message is written for users) and an empty message (then the type alone).
    """
    first = first_line(err)
    if isinstance(err, UserError) or first == type(err).__name__:
        return first
    return f"{type(err).__name__}: {first}"



class SoundaqWarning(UserWarning):
    """A problem soundaq worked around (a clip left out, a file rebuilt): shown as one line,
    ``warning: <message>``, without Python's source-line echo (see :func:`_format_warning`).
    """


def _format_warning(message, category, filename, lineno, line=None, _default=None):
    if isinstance(category, type) and issubclass(category, SoundaqWarning):
        return f"warning: {first_line(message) if isinstance(message, BaseException) else message}\n"
    return _default(message, category, filename, lineno, line)


def _install_warning_format() -> None:
    import functools
    import warnings

    if getattr(warnings.formatwarning, "_soundaq", False):
        return
    fmt = functools.partial(_format_warning, _default=warnings.formatwarning)
    fmt._soundaq = True  # type: ignore[attr-defined]
    warnings.formatwarning = fmt


_install_warning_format()
