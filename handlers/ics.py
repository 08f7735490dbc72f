"""Calendar files (.ics) for the confidant's own agenda.

A calendar is often synchronised to places the bot does not control, or
shared with colleagues: the event's title and description are neutral (no
"confidant", no case code), it names only the time and the room, and it is
marked ``CLASS:CONFIDENTIAL`` so that a shared calendar shows it as busy
time without its details.  The file name (``talk-<code>.ics``) stays in the
chat, for the confidant to tell which case it belongs to.
"""

from __future__ import annotations

from datetime import datetime

from icalendar import Calendar, Event

from domain.messages import Media


def talk_ics(*, uid: str, code: str, starts_at: datetime, ends_at: datetime, room: str,
             site: str, summary: str, description: str, now: datetime,
             cancelled: bool = False, sequence: int = 0) -> Media:
    """One VEVENT (or its cancellation, same UID) as a document to attach."""
    cal = Calendar()
    cal.add("prodid", "-//Confidant//confidant talk//EN")
    cal.add("version", "2.0")
    cal.add("method", "CANCEL" if cancelled else "PUBLISH")
    event = Event()
    event.add("uid", f"{uid}@confidant")
    event.add("dtstamp", now)
    event.add("dtstart", starts_at)
    event.add("dtend", ends_at)
    event.add("summary", summary)
    event.add("description", description)
    event.add("location", ", ".join(part for part in (room, site) if part))
    event.add("sequence", sequence)
    event.add("status", "CANCELLED" if cancelled else "CONFIRMED")
    event.add("class", "CONFIDENTIAL")
    event.add("transp", "OPAQUE")
    cal.add_component(event)
    return Media(kind="document", data=cal.to_ical(), filename=f"talk-{code}.ics",
                 mime_type="text/calendar")
