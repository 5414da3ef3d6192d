"""The one error tree (as httpx's ``_exceptions``): every error conflictlens raises on purpose
derives from ``ConflictlensError``, through one base per concern. The CLI and the HTTP API
catch the root and print or answer its first line, so a new error needs no new handler.

    ConflictlensError               the root; status_code 400 when the API answers it
    ├── ConfigError (ValueError)    a config file, a setting, an alert rule or a channel
    ├── InputError                  input that cannot be read: a log, a format, a request
    │   └── InvalidValue (ValueError)   one value given (a time, a duration, a field)
    ├── StoreError                  the database cannot be opened or used
    ├── AnalysisError (ValueError)  a question that cannot be asked as given
    ├── NotifyError                 a message that cannot be rendered or delivered
    └── ServerError                 serve cannot start, or answered with an error

(The dashboard's DataError, "the store or serve could not answer", derives from the root.)

ConfigError and AnalysisError were ValueErrors before the tree and callers still catch them
as such; a module's own error adds ValueError or OSError the same way where it was one.

A leaf module: it imports nothing of the project, so every layer may use it.
"""

from __future__ import annotations

from typing import ClassVar


class ConflictlensError(Exception):
    """An error whose message is for the user: its first line says what is wrong."""

    # The HTTP status serve's API answers this error with (conflictlens.api).
    status_code: ClassVar[int] = 400


class ConfigError(ConflictlensError, ValueError):
    """An invalid config file or setting; the message names the file, the key and the reason."""


class InputError(ConflictlensError):
    """Input that cannot be read as given (a log file, a format, a request body)."""


class InvalidValue(InputError, ValueError):
    """One value given that cannot be used (a time, a duration, a request's field); the
    message names it."""


class StoreError(ConflictlensError):
    """A problem with the database that the user can act on; the message is one line."""


class AnalysisError(ConflictlensError, ValueError):
    """A question that cannot be asked as given (an unknown bucket or sort, say)."""


class NotifyError(ConflictlensError):
    """A notification that cannot be rendered or delivered."""


class ServerError(ConflictlensError):
    """serve cannot start as asked, or answered with an error; the message is one line."""


def first_line(exc: BaseException) -> str:
    """The error's first line that says something; its class name when it says nothing."""
    for line in str(exc).splitlines():
        if line.strip():
            return line
    return type(exc).__name__
