"""Cron lines: a classic five-field crontab expression as an APScheduler
trigger in the digest's zone. Here, not in `schedule`, because a setting's
parser checks the expression when the settings are loaded.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger  # type: ignore[import-untyped]

WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


def crontab_trigger(expression: str, zone: str) -> CronTrigger:
    """A CronTrigger for a classic five-field crontab line in `zone`.

    APScheduler 3 numbers weekdays from Monday = 0, crontab from Sunday = 0;
    the weekday field is translated to names so `1-5` means Monday to Friday.
    """
    fields = expression.split()
    if len(fields) != 5:
        raise ValueError(
            f"needs five fields (minute hour day month weekday), got {len(fields)}; "
            "for example '0 7 * * 1-5'"
        )
    minute, hour, day, month, weekday = fields
    return CronTrigger(
        minute=minute,
        hour=hour,
        day=day,
        month=month,
        day_of_week=_weekdays(weekday),
        timezone=ZoneInfo(zone),
    )


def _weekdays(spec: str) -> str:
    if spec in ("*", "?"):
        return "*"
    days: set[int] = set()
    for part in spec.lower().split(","):
        days |= _weekday_part(part)
    return ",".join(WEEKDAYS[d] for d in sorted(days))


def _weekday_part(part: str) -> set[int]:
    body, _, step_text = part.partition("/")
    step = int(step_text) if step_text else 1
    if step < 1:
        raise ValueError(f"weekday step must be 1 or more in {part!r}")
    if body == "*":
        first, last = 0, 6
    else:
        low, _, high = body.partition("-")
        first = _weekday(low)
        last = _weekday(high) if high else (6 if step_text else first)
        if high and last == 0:
            last = 7  # crontab allows 7 for Sunday at the end of a range: 5-7, 1-0
    if first > last:
        raise ValueError(f"weekday range {part!r} runs backwards")
    return {d % 7 for d in range(first, last + 1, step)}


def _weekday(text: str) -> int:
    if text[:3] in WEEKDAYS:
        return WEEKDAYS.index(text[:3])
    if text.isdigit() and 0 <= int(text) <= 7:
        return int(text)  # 7 is Sunday too; kept as 7 so ranges like 5-7 run forward
    raise ValueError(f"weekday {text!r} is not 0-7 or sun-sat")
