"""What `handlers.doc_clean` and its PDF half (`handlers.doc_clean_pdf`) share:
the refusal and the name people become.  A module of its own so that the PDF
half, loaded only when a PDF arrives, needs nothing back from the first."""

from __future__ import annotations

NEUTRAL = "Anonymous"


class DocumentRejected(Exception):
    """The file is a document we must clean and could not: do not relay it.
    ``reason`` is the message key for the employee."""

    def __init__(self, detail: str, reason: str = "media.not_cleanable") -> None:
        super().__init__(detail)
        self.reason = reason
