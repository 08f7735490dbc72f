"""The week's rota as a small PNG grid, for channels that show images.

One column per day, one lane per confidant inside it, hours down the side;
duty is blue, talk hours green, an absent day grey.  Drawn with Pillow's
default font so it needs no font files on the server.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import time

from PIL import Image, ImageDraw

from domain.vocabulary import ShiftKind

Block = tuple[str, int, time, time, str, bool]
"""(confidant name, weekday, start, end, kind, absent that day)."""

COLOURS: dict[str, tuple[int, int, int]] = {ShiftKind.DUTY: (88, 140, 214),
                                           ShiftKind.TALKS: (96, 176, 120)}
ABSENT = (190, 190, 190)
HOUR_PX = 28
DAY_PX = 150
LEFT = 44
TOP = 48


def week_png(blocks: Sequence[Block], day_names: Sequence[str], title: str) -> bytes | None:
    """PNG bytes of the grid, or None when there is nothing to draw."""
    if not blocks:
        return None
    first = min(b[2].hour for b in blocks)
    last = max(b[3].hour + (1 if b[3].minute else 0) for b in blocks)
    last = max(last, first + 1)
    names = sorted({b[0] for b in blocks})
    lane = DAY_PX / len(names)
    width = LEFT + 7 * DAY_PX + 10
    height = TOP + (last - first) * HOUR_PX + 30
    img = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(img)
    draw.text((LEFT, 6), title, fill="black")
    for d, day in enumerate(day_names[:7]):
        x = LEFT + d * DAY_PX
        draw.text((x + 4, 24), day, fill="black")
        draw.line([(x, TOP), (x, height - 30)], fill=(210, 210, 210))
    for h in range(first, last + 1):
        y = TOP + (h - first) * HOUR_PX
        draw.text((4, y - 5), f"{h:02d}:00", fill=(90, 90, 90))
        draw.line([(LEFT, y), (width - 10, y)], fill=(230, 230, 230))

    def y_of(t: time) -> float:
        return TOP + (t.hour - first + t.minute / 60) * HOUR_PX

    for name, weekday, start, end, kind, away in blocks:
        x0 = LEFT + weekday * DAY_PX + names.index(name) * lane + 2
        box = (x0, y_of(start), x0 + lane - 4, y_of(end))
        draw.rectangle(box, fill=ABSENT if away else COLOURS.get(kind, (150, 150, 150)),
                       outline="black")
        draw.text((x0 + 3, y_of(start) + 2), name[:int(lane // 7)], fill="black")
    legend_y = height - 22
    draw.rectangle((LEFT, legend_y, LEFT + 14, legend_y + 12), fill=COLOURS[ShiftKind.DUTY])
    draw.text((LEFT + 20, legend_y), ShiftKind.DUTY.value, fill="black")
    draw.rectangle((LEFT + 80, legend_y, LEFT + 94, legend_y + 12), fill=COLOURS[ShiftKind.TALKS])
    draw.text((LEFT + 100, legend_y), ShiftKind.TALKS.value, fill="black")
    draw.rectangle((LEFT + 160, legend_y, LEFT + 174, legend_y + 12), fill=ABSENT)
    draw.text((LEFT + 180, legend_y), "absent", fill="black")
    out = io.BytesIO()
    img.save(out, format="PNG", optimize=True)
    return out.getvalue()
