"""TokenTRA SDK: wrap OpenAI and Anthropic clients and report token usage, latency and attribution.

    import tokentra, openai
    client = tokentra.wrap(openai.OpenAI())
    with tokentra.tags(feature="search", team="growth"):
        client.chat.completions.create(model="gpt-4o-mini", messages=[...])
"""

from ._routing_client import CallBlocked, refresh_routing
from ._state import configure, flush, stats
from .budgets import BudgetExceeded
from .classifier import TASK_CATEGORY, TASK_TYPES, classify
from .config import Config
from .feedback import feedback, last_request_id
from .record import record
from .tags import current_tags, tags
from .wrap import wrap

__all__ = [
    "BudgetExceeded",
    "CallBlocked",
    "TASK_CATEGORY",
    "TASK_TYPES",
    "Config",
    "__version__",
    "classify",
    "configure",
    "current_tags",
    "feedback",
    "record",
    "refresh_routing",
    "flush",
    "last_request_id",
    "stats",
    "tags",
    "wrap",
]

__version__ = "0.1.0"
