"""Split a SQL script into statements, respecting quotes, comments and dollar quoting.

Running a migration statement by statement lets an error name the exact statement that failed, and
gives the statement list the Supabase CLI records in schema_migrations.
"""

from __future__ import annotations

import re

_DOLLAR = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$")


def split_statements(sql: str) -> list[tuple[int, str]]:
    """Return (line number, statement) pairs; empty statements and bare comments are dropped."""
    out: list[tuple[int, str]] = []
    i, start, n = 0, 0, len(sql)
    while i < n:
        c = sql[i]
        if c == "-" and sql.startswith("--", i):
            j = sql.find("\n", i)
            i = n if j < 0 else j + 1
        elif c == "/" and sql.startswith("/*", i):
            j = sql.find("*/", i + 2)
            i = n if j < 0 else j + 2
        elif c in "'\"":
            j = i + 1
            while j < n:
                if sql[j] == c:
                    if j + 1 < n and sql[j + 1] == c:  # doubled quote inside the literal
                        j += 2
                        continue
                    break
                j += 1
            i = j + 1
        elif c == "$" and (m := _DOLLAR.match(sql, i)) and not (i and (sql[i - 1].isalnum() or sql[i - 1] == "_")):
            tag = m.group(0)
            j = sql.find(tag, m.end())
            i = n if j < 0 else j + len(tag)
        elif c == ";":
            _emit(sql, start, i + 1, out)
            i += 1
            start = i
        else:
            i += 1
    _emit(sql, start, n, out)
    return out


def _emit(sql: str, start: int, end: int, out: list[tuple[int, str]]) -> None:
    text = sql[start:end]
    body = re.sub(r"--[^\n]*", "", text).strip().rstrip(";").strip()
    if body:
        # The statement's line is that of its first word, past leading blank and comment lines.
        lead = re.match(r"(?:\s|--[^\n]*)*", text)
        code = lead.end() if lead else 0
        line = sql.count("\n", 0, start + code) + 1
        out.append((line, text[code:].strip()))
