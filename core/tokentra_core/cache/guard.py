"""The lexical guard of the semantic cache: what two prompts must share before a vector neighbour may
answer for the other.

Embeddings place "Compare A vs B" next to "Compare B vs A", "is X safe" next to "is X not safe" and
"100 USD" next to "150 USD": they read topics, not details. So before a vector hit is accepted the
prompts must agree on the details an answer depends on (see `refuses`): the same numbers, dates and
count of negations; no opposite polarity words (more/less, before/after, buy/sell, pros/cons...); not
the same words in another order around vs/or/than/to/from/in/with (a swap); not one content word
replaced by another with the rest equal (another entity). Only hashes and polarity class names leave
this module, never text.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass

__all__ = ["SUBSTITUTION_MAX", "GuardFeatures", "guard_features", "normalize_prompt", "refuses"]

# One content word replaced by one other, the rest equal: another entity or topic in the same question
# ("reset my Slack password" / "reset my Zoom password"). Paraphrases reword more than one word.
SUBSTITUTION_MAX = 1
# Words that give the words around them roles: "A vs B", "from A to B", "A rather than B".
_CONNECTORS = frozenset("vs versus or than to from into against over in with equals equal".split())

_WORD = re.compile(r"[^\W_]+(?:['’.\-/:][^\W_]+)*|[\"“”«»]", re.UNICODE)
_NUMBER = re.compile(r"^[-+]?\d[\d,]*(?:\.\d+)?%?$")
_DATE = re.compile(r"^\d{4}-\d{1,2}-\d{1,2}$|^\d{1,2}[/.]\d{1,2}[/.]\d{2,4}$")
_TIME = re.compile(r"^\d{1,2}:\d{2}(?::\d{2})?$")

_SPELLED = {w: str(i) for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen twenty".split())}
_SPELLED.update({"thirty": "30", "forty": "40", "fifty": "50", "sixty": "60", "seventy": "70", "eighty": "80",
                 "ninety": "90", "hundred": "100", "thousand": "1000", "million": "1000000",
                 "billion": "1000000000", "dozen": "12", "half": "0.5", "twice": "2", "once": "1",
                 "single": "1", "double": "2", "triple": "3", "first": "1st", "second": "2nd", "third": "3rd",
                 "fourth": "4th", "fifth": "5th", "tenth": "10th", "1st": "1st", "2nd": "2nd", "3rd": "3rd"})
_MONTHS = ("january february march april may june july august september october november december".split())
_DATE_WORDS = {m: f"month:{i}" for i, m in enumerate(_MONTHS, 1)}
_DATE_WORDS.update({m[:3]: f"month:{i}" for i, m in enumerate(_MONTHS, 1) if m != "may"})
_DATE_WORDS.update({d: f"day:{d[:3]}" for d in
                    "monday tuesday wednesday thursday friday saturday sunday".split()})
_DATE_WORDS.update({w: f"rel:{w}" for w in "today tomorrow yesterday tonight weekend morning evening afternoon "
                    "night noon midnight week month year quarter decade century".split()})

_NEGATIONS = frozenset(
    "not no never none nobody nothing neither nor without cannot cant can't won't wont don't dont doesn't "
    "doesnt isn't isnt aren't arent wasn't wasnt weren't werent shouldn't shouldnt wouldn't wouldnt couldn't "
    "couldnt didn't didnt hasn't hasnt haven't havent hadn't hadnt mustn't needn't ain't nowhere hardly "
    "barely except excluding unless".split())

# Words whose opposite changes the answer, by class and sign: synonyms share a label, so a paraphrase
# that says "advantages" for "benefits" still agrees, while "benefits" against "drawbacks" does not.
_POLARITY_CLASSES = {
    "merit+": "help helps healthy beneficial helpful benefits benefit advantages advantage pros pro upsides upside "
              "strengths strength good better best pluses",
    "merit-": "unhealthy harmful risky drawbacks drawback disadvantages disadvantage cons con downsides downside "
              "weaknesses weakness risks risk bad worse worst minuses dangers",
    "amount+": "more most increase increases increasing raise raises higher highest maximum max maximize greater "
               "greatest larger largest bigger biggest many much above over exceed exceeds gain gains grow",
    "amount-": "less least fewer fewest decrease decreases decreasing reduce reduces lower lowest minimum min "
               "minimize smaller smallest below under drop drops loss losses shrink",
    "price+": "expensive pricier priciest costly premium",
    "price-": "cheap cheaper cheapest inexpensive affordable budget",
    "time+": "after later next future upcoming following since newer newest latest modern",
    "time-": "before earlier previous prior past preceding until older oldest earliest ancient",
    "speed+": "fast faster fastest quick quicker quickest rapid",
    "speed-": "slow slower slowest sluggish",
    "length+": "long longer longest lengthy detailed",
    "length-": "short shorter shortest brief briefly concise",
    "trade+": "buy buying purchase acquire long",
    "trade-": "sell selling sold dispose",
    "change+": "add adding insert enable enabling install start begin open include allow create encrypt "
               "import upload connect join lock",
    "change-": "remove removing delete disable disabling uninstall stop end close exclude deny destroy decrypt "
               "export download disconnect leave unlock",
    "truth+": "true correct right yes valid positive safe legal",
    "truth-": "false incorrect wrong invalid negative unsafe illegal dangerous",
    "temp+": "hot hotter warm warmer heat",
    "temp-": "cold colder cool cooler freeze",
    "dir+": "up upward upwards north east left",
    "dir-": "down downward downwards south west right",
}
_SWITCH_VERBS = frozenset("turn turns turned turning switch switched switching log logged sign signed".split())
_POLARITY = {word: label for label, words in _POLARITY_CLASSES.items() for word in words.split()}

# Function words and the usual ways of asking, left out of the content words: paraphrases vary these.
_STOP = frozenset(
    "a an the of to in on at by for with from into onto about as and or but if then so than that this these "
    "those there here it its it's is are was were be been being am do does did doing done have has had having "
    "i me my mine we us our you your yours he him his she her they them their what what's whats which who "
    "whom whose when where why how how's can could would should will shall may might must please kindly "
    "tell give show explain describe list let let's help want need like know just also really very some any "
    "all each every one ones get got make makes made find say said write answer question quick simple "
    "hi hello hey thanks thank ok okay way ways mean means meaning define definition there "
    # ways of asking that paraphrases swap for one another
    "compare comparison versus vs search look looking show steps step recap summarize summarise summary "
    "convert conversion translate say called name named tell idea worth equal equals equivalent into via "
    "using use used uses need needs want wants would like could should possible way "
    "which whichever who does anyone someone something".split())

_NOT_CONTENT = _STOP | _NEGATIONS | frozenset(_SPELLED) | frozenset(_DATE_WORDS) | _CONNECTORS
_HOW_MANY_IN = re.compile(r"\bhow many\b[^?.!]*?\bin\b", re.IGNORECASE)
_QUOTES = frozenset("\"“”«»")


def normalize_prompt(text: str) -> str:
    """The text an exact match compares: NFKC, case-folded, whitespace collapsed, trailing marks dropped."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(folded.split()).rstrip(" ?!.。")


def _hash(parts: list[str] | tuple[str, ...]) -> str:
    return hashlib.sha256("\x1f".join(parts).encode("utf-8", "surrogatepass")).hexdigest()[:32]


def _number(token: str) -> str | None:
    if _DATE.match(token) or _TIME.match(token):
        return "d:" + re.sub(r"\b0+(\d)", r"\1", re.sub(r"[/.]", "-", token))
    if not _NUMBER.match(token):
        return None
    raw = token.replace(",", "").lstrip("+")
    percent = raw.endswith("%")
    raw = raw.rstrip("%")
    try:
        value = float(raw)
    except ValueError:
        return None
    text = f"{value:.10g}"
    return text + ("%" if percent else "")


_SCALES = {"hundred": 100, "thousand": 1000, "million": 1_000_000, "billion": 1_000_000_000}


def _spelled_number(words: list[str]) -> str:
    """'two hundred fifty' -> '250'; ordinals and fractions stand alone."""
    values = [_SPELLED[w] for w in words]
    if len(values) == 1 or not all(v.replace(".", "").isdigit() for v in values):
        return ",".join(_number(v) or v for v in values)
    total, group = 0.0, 0.0
    for word in words:
        if word in _SCALES:
            group = (group or 1) * _SCALES[word]
            if _SCALES[word] >= 1000:
                total, group = total + group, 0.0
        else:
            group += float(_SPELLED[word])
    return f"{total + group:.10g}"


def _stem(word: str) -> str:
    for suffix in ("'s", "’s", "ies", "es", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)] + ("y" if suffix == "ies" else "")
    return word


@dataclass(frozen=True)
class GuardFeatures:
    guard_key: str  # hash of the numbers, dates and negation count: must be equal
    polarity: tuple[str, ...]  # polarity classes present ("merit+", "time-"): opposites refuse a hit
    tokens: tuple[str, ...]  # short hashes of the distinct content words: a swapped-in word refuses a hit
    bag_hash: str  # hash of the sorted role words (the content words around vs, or, than, to, from)
    seq_hash: str  # hash of the role words in order: the same ones in another order refuse a hit


class _Scan:
    """One pass over a prompt's words, collecting the guard's features."""

    def __init__(self) -> None:
        self.numbers: list[str] = []
        self.dates: list[str] = []
        self.polarity: set[str] = set()
        self.negations = 0
        self.content: list[str] = []
        self.roles: list[str] = []
        self.spelled: list[str] = []  # a run of number words ("two hundred fifty") read as one number
        self.after_connector = False
        self.previous = ""

    def feed(self, word: str) -> None:
        lower = word.casefold().replace("’", "'")
        number = _number(word)
        if number is not None:
            (self.dates if number.startswith("d:") else self.numbers).append(number)
        elif lower in _SPELLED:
            self.spelled.append(lower)
        elif lower in _DATE_WORDS and not (lower == "may" and not word[0].isupper()):
            self.dates.append(_DATE_WORDS[lower])
        if self.spelled and lower not in _SPELLED and lower != "and":
            self.numbers.append(_spelled_number(self.spelled))
            self.spelled = []
        if (lower in _NEGATIONS or lower.endswith("n't")) and not (lower == "no" and self.previous == "or"):
            self.negations += 1  # "yes or no?" asks, it does not negate
        if lower in _CONNECTORS:
            if self.content and (not self.roles or self.roles[-1] != self.content[-1]):
                self.roles.append(self.content[-1])
            self.after_connector = True
        label = _POLARITY.get(lower)
        if lower in ("on", "off") and self.previous in _SWITCH_VERBS:
            label = "change+" if lower == "on" else "change-"  # turn on = enable, turn off = disable
        if label is not None:
            self.polarity.add(label)
        elif number is None and lower not in _NOT_CONTENT:
            self.content.append(_stem(lower))
            if self.after_connector:
                self.roles.append(self.content[-1])
                self.after_connector = False
        self.previous = lower

    def features(self, text: str) -> GuardFeatures:
        # "how many X are in Y" names its roles the other way round from "convert Y to X" ("how much is
        # X in Y" does not: X is still the source).
        if _HOW_MANY_IN.search(text):
            self.roles.reverse()
        if self.spelled:
            self.numbers.append(_spelled_number(self.spelled))
        key = ("n:" + ",".join(sorted(self.numbers)), "d:" + ",".join(sorted(self.dates)), f"neg:{self.negations}")
        roles = len(set(self.roles)) > 1
        return GuardFeatures(
            guard_key=_hash(key),
            polarity=tuple(sorted(self.polarity)),
            tokens=tuple(sorted({_hash([word])[:8] for word in self.content})),
            bag_hash=_hash(sorted(self.roles)) if roles else "",
            seq_hash=_hash(self.roles) if roles else "",
        )


def guard_features(text: str) -> GuardFeatures:
    """The guard's features of one prompt (the last user message), as hashes."""
    scan = _Scan()
    for match in _WORD.finditer(unicodedata.normalize("NFKC", text)):
        if match.group(0) not in _QUOTES:
            scan.feed(match.group(0))
    return scan.features(text)


def _opposite(label: str) -> str:
    return label[:-1] + ("-" if label.endswith("+") else "+")


def refuses(query: GuardFeatures, entry: GuardFeatures) -> str | None:
    """Why the guard refuses `entry` as an answer to `query`, or None. The SQL lookup applies the same
    rules to the stored hashes (private.cache_guard_refuses); this copy serves tests and the bench."""
    if query.guard_key != entry.guard_key:
        return "numbers_dates_negations"
    if any(_opposite(label) in entry.polarity for label in query.polarity):
        return "opposite"
    if query.bag_hash and query.bag_hash == entry.bag_hash and query.seq_hash != entry.seq_hash:
        return "swapped"
    ours, theirs = set(query.tokens), set(entry.tokens)
    if len(ours - theirs) == len(theirs - ours) == SUBSTITUTION_MAX and ours & theirs:
        return "substituted"
    return None
