"""Typed ids: plain strings at run time, distinct types for the type checker,
so a case code is never passed where a confidant id belongs."""

from __future__ import annotations

from typing import NewType

CaseCode = NewType("CaseCode", str)
"""Random, non-sequential public name of a case, e.g. ``K7F-3MQ``."""

ConfidantId = NewType("ConfidantId", str)
ContactId = NewType("ContactId", str)
"""Pseudonymous employee id (random, never derived from a platform id)."""

ChannelName = NewType("ChannelName", str)
"""``telegram`` | ``matrix`` | ``web`` | ``memory`` (tests)."""
