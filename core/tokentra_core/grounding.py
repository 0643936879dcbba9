"""Is every number in a piece of prose in the evidence it was written from?

`unsupported_numbers(text, evidence)` returns the figures of `text`, as written, that the evidence (a
JSON document) does not back. The rules, in the order they are applied:

1. Names are not numbers. Every string of the evidence that contains a digit (a model `gpt-4o-mini`, a
   key prefix, a title "Fix the 12% error rate") is blanked out of the text first; then any other token
   whose digits follow a letter (`GPT-4o`, `claude-3.5`, `v2`, `f2`) or run straight into letters that are
   no unit (`4o`) is treated as a name and skipped.
2. Dates and times must be those of the evidence. ISO dates and times (`2026-11-22`, `2026-11-22T13:00Z`,
   `2026-11-22 13:00`), month-name dates (`Nov 22`, `22 November 2026`) and clock times (`13:00`, `1 pm`)
   must fall on a timestamp the evidence holds (all UTC); a year alone must be one of their years.
3. A number matches an evidence number when it equals it at the precision the prose shows: `$1,234.57`,
   `1234.6`, `1,235` and `$1.2k` all cite 1234.5678 (within half a unit of the last digit written, after
   scaling by k/thousand, M/million, bn/billion or cents). Signs are ignored (a fall of $12 cites -12).
4. A percentage (`12.5%`, `12.5 percent`, `pp`) must be given by the evidence: a `*_pct` field, or a
   fraction of at most 1 (a rate, a share, a confidence) that the prose multiplies by 100 (0.0734 as
   7.3%). A percentage the writer computed from two figures is refused, even a right one: checking it
   would mean redoing every sum the writer might have done, and the evidence gives the ones worth citing.

Numbers spelled out in words ("three hours") are not checked.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

__all__ = ["Evidence", "unsupported_numbers"]

_MONTHS = {m: i + 1 for i, m in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"))}
_MONTH = r"(?P<mon>(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?" \
         r"|sept?(?:ember)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\b)\.?"
_ORD = r"(?:st|nd|rd|th)?"
_ISO = re.compile(r"(?<!\d)(?P<y>\d{4})-(?P<m>\d{2})-(?P<d>\d{2})"
                  r"(?:[T ](?P<H>\d{2}):(?P<M>\d{2})(?::\d{2}(?:\.\d+)?)?)?(?:Z|[+-]\d{2}:?\d{2}|\s?UTC)?(?!\d)")
_MONTH_DAY = re.compile(rf"\b{_MONTH}\s+(?P<d>\d{{1,2}}){_ORD}(?:,?\s+(?P<y>\d{{4}}))?(?!\d)", re.I)
_DAY_MONTH = re.compile(rf"(?<!\d)(?P<d>\d{{1,2}}){_ORD}\s+(?:of\s+)?{_MONTH}(?:,?\s+(?P<y>\d{{4}}))?(?!\d)", re.I)
_CLOCK = re.compile(r"(?<![\d.:])(?P<H>\d{1,2}):(?P<M>\d{2})(?::\d{2})?(?:\s?(?P<ap>[ap])\.?m\b\.?)?(?![\d:])", re.I)
_HOUR_AMPM = re.compile(r"(?<![\d.:])(?P<H>\d{1,2})\s?(?P<ap>[ap])\.?m\b\.?", re.I)

# Letters that may follow a number's digits directly and still make it a figure, not a name.
_UNITS = {"k", "m", "b", "bn", "x", "h", "hr", "hrs", "d", "ms", "s", "min", "mins", "st", "nd", "rd", "th",
          "pp", "pct", "usd", "ct", "cts"}
_TOKEN = re.compile(r"[A-Za-z0-9_]+(?:[.\-/][A-Za-z0-9_]+)*")
_NUMBER = re.compile(
    r"(?<![\w.$])(?P<pre>[-+]?\$?)(?P<int>\d{1,3}(?:,\d{3})+|\d+)(?P<frac>\.\d+)?"
    r"(?:\s?(?P<unit>%|[Pp]ercent(?:age points?)?\b|[Pp]er\s?cent\b|pp\b|[kK]\b|thousand\b|M\b|[Mm]illion\b"
    r"|bn\b|B\b|[Bb]illion\b|cents?\b|x\b|×))?")
_PERCENT = {"%", "percent", "percentagepoint", "percentagepoints", "pp"}
_SCALE: dict[str, int | Decimal] = {
    "k": 1000, "thousand": 1000, "M": 1_000_000, "million": 1_000_000, "bn": 10**9, "B": 10**9,
    "billion": 10**9, "cent": Decimal("0.01"), "cents": Decimal("0.01")}
_TIME_TEXT = re.compile(r"^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?(?:Z|[+-]\d{2}:?\d{2})?$")
_NUMERIC_TEXT = re.compile(r"^-?\d+(?:\.\d+)?$")


@dataclass(frozen=True)
class Evidence:
    """What a JSON evidence document offers the checker."""

    numbers: tuple[Decimal, ...]  # every number, absolute
    percents: tuple[Decimal, ...]  # values a percentage may cite: *_pct fields, and 100 x fractions <= 1
    names: tuple[str, ...]  # strings with a digit in them, longest first
    times: tuple[datetime, ...]  # every timestamp, in UTC

    @classmethod
    def of(cls, doc: Any) -> Evidence:
        numbers: set[Decimal] = set()
        percents: set[Decimal] = set()
        names: set[str] = set()
        times: set[datetime] = set()
        for key, value in _leaves(doc, ""):
            if isinstance(value, str):
                if _TIME_TEXT.match(value.strip()):
                    times.add(_utc(value.strip()))
                    continue
                if not _NUMERIC_TEXT.match(value.strip()):
                    if any(c.isdigit() for c in value) and len(value.strip()) > 1:
                        names.add(value.strip())
                    continue
            number = _decimal(value)
            if number is None:
                continue
            numbers.add(abs(number))
            if key.endswith("_pct") or "percent" in key:
                percents.add(abs(number))
            if abs(number) <= 1:
                percents.add(abs(number) * 100)
        return cls(tuple(numbers), tuple(percents), tuple(sorted(names, key=len, reverse=True)), tuple(times))


def unsupported_numbers(text: str, evidence: Any) -> list[str]:
    """The figures of `text` (as written, in order, each once) that `evidence` does not back."""
    ev = evidence if isinstance(evidence, Evidence) else Evidence.of(evidence)
    text = text.replace("\u2212", "-").replace("\u2013", "-").replace("\u00a0", " ").replace("\u202f", " ")
    bad: list[str] = []
    for name in ev.names:  # rule 1: the evidence's own names
        text = re.sub(rf"(?<![A-Za-z0-9_]){re.escape(name)}(?![A-Za-z0-9_])", " ", text, flags=re.I)
    text = _check_dates(text, ev, bad)  # rule 2
    text = _TOKEN.sub(lambda m: " " if _is_name(m.group()) else m.group(), text)  # rule 1: other names
    for m in _NUMBER.finditer(text):  # rules 3 and 4
        if not _backed(m, ev):
            bad.append(m.group().strip())
    return list(dict.fromkeys(bad))


def _leaves(doc: Any, key: str) -> Iterator[tuple[str, Any]]:
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from _leaves(v, str(k))
    elif isinstance(doc, list):
        for v in doc:
            yield from _leaves(v, key)
    else:
        yield key, doc


def _decimal(value: Any) -> Decimal | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None


def _utc(text: str) -> datetime:
    t = datetime.fromisoformat(text.replace("Z", "+00:00").replace(" ", "T"))
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


def _check_dates(text: str, ev: Evidence, bad: list[str]) -> str:
    """Blank out every date and time expression, recording those the evidence does not hold."""

    def verdict(m: re.Match, ok: bool) -> str:
        if not ok:
            bad.append(m.group().strip())
        return " "

    def on_day(y: int | None, mo: int, d: int) -> bool:
        return any(t.month == mo and t.day == d and (y is None or t.year == y) for t in ev.times)

    def iso(m: re.Match) -> str:
        y, mo, d = int(m["y"]), int(m["m"]), int(m["d"])
        if m["H"] is None:
            return verdict(m, on_day(y, mo, d))
        return verdict(m, any((t.year, t.month, t.day, t.hour, t.minute) == (y, mo, d, int(m["H"]), int(m["M"]))
                              for t in ev.times))

    def named(m: re.Match) -> str:
        y = int(m["y"]) if m["y"] else None
        return verdict(m, on_day(y, _MONTHS[m["mon"].lower()[:3]], int(m["d"])))

    def clock(m: re.Match) -> str:
        hour, minute = int(m["H"]), int(m.groupdict().get("M") or 0)
        if m["ap"]:
            hour = hour % 12 + (12 if m["ap"].lower() == "p" else 0)
        return verdict(m, any((t.hour, t.minute) == (hour, minute) for t in ev.times))

    for pattern, check in ((_ISO, iso), (_MONTH_DAY, named), (_DAY_MONTH, named), (_CLOCK, clock),
                           (_HOUR_AMPM, clock)):
        text = pattern.sub(check, text)
    return text


def _is_name(token: str) -> bool:
    """A token whose digits belong to a name: a letter before the first digit, or digits running into
    letters that are no unit ("4o")."""
    first = next((i for i, c in enumerate(token) if c.isdigit()), None)
    if first is None:
        return False
    if any(c.isalpha() for c in token[:first]):
        return True
    rest = re.match(r"[\d.,]*([A-Za-z]*)", token[first:])
    letters = rest.group(1).lower() if rest else ""
    return bool(letters) and letters not in _UNITS


def _backed(m: re.Match, ev: Evidence) -> bool:
    frac = m["frac"] or ""
    value = Decimal(m["int"].replace(",", "") + frac)
    unit = (m["unit"] or "").replace(" ", "")
    if unit not in ("M", "B"):
        unit = unit.lower()
    # within half a unit of the last digit written, at the scale written
    scale = Decimal(_SCALE.get(unit, 1))
    tolerance = Decimal("0.5") * Decimal(10) ** -max(len(frac) - 1, 0) * scale
    if unit in _PERCENT:
        return any(abs(value - v) <= tolerance for v in ev.percents)
    value *= scale
    if not frac and not unit and 1900 <= value <= 2100 and any(t.year == value for t in ev.times):
        return True  # a year of the evidence's dates
    return any(abs(value - v) <= tolerance for v in ev.numbers)
