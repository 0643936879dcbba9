"""A generated, labelled set of prompts for the semantic cache's quality: for each base question,
paraphrases that mean the same (true duplicates) and near misses that do not (the traps: another number,
date or entity, swapped roles, a negation, an opposite word, another system prompt, a related question).

Every prompt carries a meaning key (family, slot values, flags): a cache hit is right exactly when the
entry it returns has the query's meaning key. Randomised by seed (slot values, phrasings, casing and
filler); hold seeds out to test what was not tuned on.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

__all__ = ["Prompt", "Case", "generate"]

COUNTRIES = ["France", "Spain", "Italy", "Germany", "Japan", "Brazil", "Canada", "Kenya", "Norway", "Peru",
             "Egypt", "Vietnam", "Poland", "Chile", "Ireland", "Morocco", "Thailand", "Greece"]
CITIES = ["Paris", "London", "Berlin", "Madrid", "Tokyo", "Boston", "Chicago", "Denver", "Lisbon", "Vienna",
          "Prague", "Dublin", "Seattle", "Austin", "Munich", "Oslo", "Lyon", "Porto", "Zurich", "Milan"]
CURRENCIES = ["USD", "EUR", "GBP", "JPY", "CHF", "CAD", "AUD", "SEK"]
LANGS = ["Python", "Java", "Rust", "Go", "Ruby", "Kotlin", "Swift", "TypeScript", "C#", "Scala"]
PRODUCTS = ["Slack", "Zoom", "Gmail", "Dropbox", "Notion", "Jira", "Figma", "Trello", "Outlook", "GitHub"]
FEATURES = ["two-factor authentication", "dark mode", "notifications", "auto-save", "read receipts",
            "location sharing", "offline mode", "spell check"]
FOODS = ["coffee", "green tea", "eggs", "red wine", "oatmeal", "dark chocolate", "bananas", "cheese"]
CONDITIONS = ["diabetes", "high blood pressure", "pregnancy", "weight loss", "heart health", "sleep"]
THINGS = ["remote work", "electric cars", "solar panels", "microservices", "open offices", "nuclear power",
          "homeschooling", "cloud computing", "index funds", "standing desks"]
TICKERS = ["AAPL", "TSLA", "NVDA", "AMZN", "MSFT", "GOOG", "META", "NFLX"]
LANGUAGES = ["Spanish", "French", "German", "Italian", "Japanese", "Portuguese", "Dutch"]
PHRASES = ["good morning", "where is the train station", "thank you very much", "how much does it cost",
           "I would like a coffee", "see you tomorrow"]
MONTHS = ["January", "February", "March", "April", "June", "July", "September", "October", "November"]
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"]
ACTIVITIES = ["running a marathon", "learning guitar", "public speaking", "saving money", "sleeping better",
              "writing a resume"]
EVENTS = ["World Cup", "Tour de France", "Super Bowl", "Wimbledon final", "Champions League final"]
UNITS = [("miles", "kilometers"), ("pounds", "kilograms"), ("feet", "meters"), ("gallons", "liters"),
         ("ounces", "grams")]
SYSTEMS = ["You are a helpful assistant.", "You are a terse assistant. Answer in one sentence.",
           "You are a customer support agent for an airline.", "Answer as a pirate would."]

# Each family: slot makers, paraphrase templates (all mean the same), and trap makers.
FAMILIES: dict[str, dict] = {
    "capital": {
        "slots": lambda r: {"x": r.choice(COUNTRIES)},
        "say": ["What is the capital of {x}?", "Tell me the capital city of {x}.", "Which city is the capital of {x}?",
                "What's {x}'s capital?", "Name the capital of {x}."],
        "traps": {"entity": ("x", COUNTRIES), "related": ["What is the largest city in {x}?",
                                                            "What is the population of {x}?"]},
    },
    "fx": {
        "slots": lambda r: {"n": r.choice([50, 100, 250, 1200, 75, 3000, 20]), "a": r.choice(CURRENCIES[:4]),
                            "b": r.choice(CURRENCIES[4:])},
        "say": ["Convert {n} {a} to {b}.", "How much is {n} {a} in {b}?", "What is {n} {a} worth in {b}?",
                "{n} {a} to {b} please", "Can you convert {n} {a} into {b}?"],
        "traps": {"number": ("n", [10, 60, 500, 150, 1000, 2500, 80]), "swap": ("a", "b"),
                  "entity": ("b", CURRENCIES[4:])},
    },
    "compare": {
        "slots": lambda r: dict(zip("ab", r.sample(LANGS, 2), strict=True))
        | {"u": r.choice(["backend services", "data science", "mobile apps", "scripting"])},
        "say": ["Compare {a} vs {b} for {u}.", "{a} or {b}: which is better for {u}?",
                "Which is better for {u}, {a} or {b}?", "How does {a} compare with {b} for {u}?",
                "Is {a} better than {b} for {u}?"],
        "traps": {"swap": ("a", "b"), "entity": ("b", LANGS)},
    },
    "password": {
        "slots": lambda r: {"p": r.choice(PRODUCTS)},
        "say": ["How do I reset my {p} password?", "How can I reset my password in {p}?",
                "I forgot my {p} password, how do I reset it?", "Steps to reset a {p} password?",
                "What's the way to reset my {p} password?"],
        "traps": {"entity": ("p", PRODUCTS), "related": ["How do I change my {p} username?",
                                                         "How do I delete my {p} account?"]},
    },
    "meeting": {
        "slots": lambda r: {"d": f"2026-{r.randint(1, 12):02d}-{r.randint(1, 28):02d}",
                            "t": r.choice(["sales", "design", "budget", "hiring"])},
        "say": ["Summarize the {t} meeting notes from {d}.", "Give me a summary of the {t} meeting on {d}.",
                "What was decided in the {t} meeting held on {d}?", "Recap the {t} meeting of {d}.",
                "Summarise the notes of the {t} meeting on {d}."],
        "traps": {"date": ("d", None), "entity": ("t", ["marketing", "security", "product", "finance"])},
    },
    "health": {
        "slots": lambda r: {"f": r.choice(FOODS), "c": r.choice(CONDITIONS)},
        "say": ["Is {f} good for {c}?", "Is {f} healthy when it comes to {c}?", "Does {f} help with {c}?",
                "Is eating {f} good for {c}?", "Can {f} be good for {c}?"],
        "traps": {"negation": [("Is {f} good for {c}?", "Is {f} not good for {c}?"),
                               ("Does {f} help with {c}?", "Doesn't {f} help with {c}?")],
                  "opposite": [("good", "bad")], "entity": ("c", CONDITIONS)},
    },
    "flight": {
        "slots": lambda r: dict(zip("ab", r.sample(CITIES, 2), strict=True)) | {"w": r.choice(WEEKDAYS)},
        "say": ["Find flights from {a} to {b} on {w}.", "Search for a flight from {a} to {b} on {w}.",
                "Are there flights from {a} to {b} on {w}?", "Show me {w} flights from {a} to {b}.",
                "I need a flight from {a} to {b} this {w}."],
        "traps": {"swap": ("a", "b"), "date": ("w", WEEKDAYS), "entity": ("b", CITIES)},
    },
    "units": {
        "slots": lambda r: {"n": r.choice([3, 5, 12, 26, 40, 100]), "u": r.randrange(len(UNITS))},
        "say": ["How many {u1} are in {n} {u0}?", "Convert {n} {u0} to {u1}.", "What is {n} {u0} in {u1}?",
                "{n} {u0} equals how many {u1}?", "Please convert {n} {u0} into {u1}."],
        "traps": {"number": ("n", [2, 7, 15, 30, 50, 200]), "swap": ("u0", "u1")},
    },
    "code": {
        "slots": lambda r: {"l": r.choice(LANGS), "j": r.choice(["reverse a string", "read a CSV file",
                                                                   "sort a list", "parse JSON"])},
        "say": ["How do I {j} in {l}?", "Write {l} code to {j}.", "Show me how to {j} using {l}.",
                "What's the {l} way to {j}?", "In {l}, how can I {j}?"],
        "traps": {"entity": ("l", LANGS), "related": ["How do I {j} in {l} without a library?"]},
    },
    "translate": {
        "slots": lambda r: {"s": r.choice(PHRASES), "g": r.choice(LANGUAGES)},
        "say": ["Translate \"{s}\" into {g}.", "How do you say \"{s}\" in {g}?", "What is \"{s}\" in {g}?",
                "Translate to {g}: \"{s}\"", "Can you translate \"{s}\" to {g}?"],
        "traps": {"entity": ("g", LANGUAGES), "phrase": ("s", PHRASES)},
    },
    "merits": {
        "slots": lambda r: {"x": r.choice(THINGS)},
        "say": ["What are the benefits of {x}?", "What are the advantages of {x}?", "List the pros of {x}.",
                "Why is {x} beneficial?", "What are the upsides of {x}?"],
        "traps": {"opposite": [("benefits", "drawbacks"), ("advantages", "disadvantages"), ("pros", "cons"),
                               ("upsides", "downsides"), ("beneficial", "risky")],
                  "entity": ("x", THINGS)},
    },
    "stock": {
        "slots": lambda r: {"t": r.choice(TICKERS), "m": r.choice(MONTHS)},
        "say": ["Should I buy {t} stock in {m}?", "Is {m} a good time to buy {t} shares?",
                "Would you buy {t} stock this {m}?", "Is buying {t} in {m} a good idea?",
                "Buy {t} stock in {m}: yes or no?"],
        "traps": {"opposite": [("buy", "sell"), ("buying", "selling")], "entity": ("t", TICKERS),
                  "date": ("m", MONTHS)},
    },
    "winner": {
        "slots": lambda r: {"y": r.choice([1998, 2006, 2010, 2014, 2018, 2022]), "e": r.choice(EVENTS)},
        "say": ["Who won the {y} {e}?", "Which team won the {e} in {y}?", "Who was the winner of the {y} {e}?",
                "Tell me who won the {e} of {y}.", "{y} {e}: who won?"],
        "traps": {"number": ("y", [2002, 2012, 2016, 2020, 1994]), "entity": ("e", EVENTS)},
    },
    "tips": {
        "slots": lambda r: {"k": r.choice([3, 5, 7, 10]), "a": r.choice(ACTIVITIES)},
        "say": ["Give me {k} tips for {a}.", "List {k} tips on {a}.", "What are {k} good tips for {a}?",
                "Share {k} tips about {a}.", "I need {k} tips for {a}."],
        "traps": {"number": ("k", [2, 4, 6, 8, 12]), "entity": ("a", ACTIVITIES)},
    },
    "toggle": {
        "slots": lambda r: {"f": r.choice(FEATURES), "p": r.choice(PRODUCTS)},
        "say": ["How do I enable {f} in {p}?", "How can I turn on {f} in {p}?", "Where do I enable {f} on {p}?",
                "Steps to enable {f} in {p}?", "How to switch on {f} in {p}?"],
        "traps": {"opposite": [("enable", "disable"), ("turn on", "turn off"), ("switch on", "switch off")],
                  "entity": ("p", PRODUCTS)},
    },
}


@dataclass(frozen=True)
class Prompt:
    text: str
    meaning: str  # equal meanings under the same system prompt: a hit is right
    system: str = SYSTEMS[0]


@dataclass
class Case:
    """One base question (stored in the cache), its paraphrases and its traps, each labelled by kind."""

    base: Prompt
    duplicates: list[Prompt] = field(default_factory=list)
    traps: list[tuple[str, Prompt]] = field(default_factory=list)


def _fill(template: str, slots: dict) -> str:
    values = dict(slots)
    if "u" in values and isinstance(values["u"], int):
        values["u0"], values["u1"] = UNITS[values.pop("u")]
    return template.format(**values)


def _meaning(family: str, slots: dict, flag: str = "") -> str:
    values = dict(slots)
    if "u" in values and isinstance(values["u"], int):
        values["u0"], values["u1"] = UNITS[values.pop("u")]
    return family + "|" + "|".join(f"{k}={values[k]}" for k in sorted(values)) + (f"|{flag}" if flag else "")


def _noise(r: random.Random, text: str) -> str:
    """Users' surface variety: casing, filler, punctuation."""
    roll = r.random()
    if roll < 0.15:
        text = text.lower()
    elif roll < 0.25:
        text = text.rstrip("?.!")
    if r.random() < 0.2:
        text = r.choice(["Quick question: ", "Hey, ", "Please help: ", "Hi! "]) + text[0].lower() + text[1:]
    return text


def _trap(r: random.Random, family: str, spec: dict, kind: str, how, slots: dict, phrasing: str  # noqa: C901
          ) -> tuple[str, Prompt] | None:
    if kind in ("entity", "number", "date", "phrase"):
        slot, pool = how
        current = slots[slot]
        if pool is None:  # a date: move it by a month or a day
            year, month, day = (int(p) for p in current.split("-"))
            choice = (f"{year}-{month % 12 + 1:02d}-{day:02d}" if r.random() < 0.5
                      else f"{year}-{month:02d}-{day % 28 + 1:02d}")
        else:
            options = [p for p in pool if p != current and p not in slots.values()]
            if not options:
                return None
            choice = r.choice(options)
        changed = {**slots, slot: choice}
        return kind, Prompt(_fill(phrasing, changed), _meaning(family, changed))
    if kind == "swap":
        a, b = how
        if a == "u0":
            u0, u1 = UNITS[slots["u"]]
            text = phrasing.format(**{**slots, "u0": u1, "u1": u0})
            return kind, Prompt(text, _meaning(family, slots, "swapped"))
        changed = {**slots, a: slots[b], b: slots[a]}
        return kind, Prompt(_fill(phrasing, changed), _meaning(family, changed))
    if kind == "negation":
        for plain, negated in how:
            if phrasing == plain:
                return kind, Prompt(_fill(negated, slots), _meaning(family, slots, "negated"))
        plain, negated = r.choice(how)
        return kind, Prompt(_fill(negated, slots), _meaning(family, slots, "negated"))
    if kind == "opposite":
        for word, opposite in how:
            if word in phrasing:
                return kind, Prompt(_fill(phrasing.replace(word, opposite, 1), slots),
                                    _meaning(family, slots, f"opposite:{word}"))
        return None
    if kind == "related":
        return kind, Prompt(_fill(r.choice(how), slots), _meaning(family, slots, "related:" + r.choice(how)[:12]))
    return None


def generate(seed: int, cases: int = 60, duplicates: int = 3) -> list[Case]:
    """`cases` base questions with their paraphrases and traps (plus a system-prompt trap for some)."""
    r = random.Random(seed)
    out: list[Case] = []
    seen: set[str] = set()
    names = sorted(FAMILIES)
    attempts = 0
    while len(out) < cases and attempts < cases * 20:
        attempts += 1
        family = r.choice(names)
        spec = FAMILIES[family]
        slots = spec["slots"](r)
        meaning = _meaning(family, slots)
        if meaning in seen:
            continue
        seen.add(meaning)
        phrasings = list(spec["say"])
        r.shuffle(phrasings)
        base_phrasing = phrasings[0]
        system = r.choice(SYSTEMS)
        case = Case(Prompt(_noise(r, _fill(base_phrasing, slots)), meaning, system))
        for phrasing in phrasings[1:1 + duplicates]:
            case.duplicates.append(Prompt(_noise(r, _fill(phrasing, slots)), meaning, system))
        for kind, how in spec["traps"].items():
            made = _trap(r, family, spec, kind, how, slots, r.choice([base_phrasing, *phrasings[1:3]]))
            if made is not None:
                trap_kind, prompt = made
                case.traps.append((trap_kind, Prompt(_noise(r, prompt.text), prompt.meaning, system)))
        if r.random() < 0.3:  # the same words under another system prompt: another answer
            other = r.choice([s for s in SYSTEMS if s != system])
            case.traps.append(("system_prompt", Prompt(case.base.text, meaning, other)))
        out.append(case)
    return out
