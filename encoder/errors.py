"""The one family of errors `encoder` raises for a user's input, a user's file or the install.

Every error carries a stable `code` (what went wrong) and `details` (the values a sentence about
it needs), apart from its English message, so that an interface says the same error in its own
language from those two alone (the app: `ui.errors.explain`). The classes also keep the built-in
type a caller would expect (ValueError, ImportError).
"""

from __future__ import annotations

from typing import Any


class EncoderError(Exception):
    """Base of the family: `code` and `details` as the module docstring says."""

    code: str = "error"

    def __init__(self, message: str, *, code: str | None = None, **details: Any) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code
        self.details: dict[str, Any] = details
