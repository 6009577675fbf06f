"""Milvus filter expressions, built in one place (quoting and escaping live here and nowhere else).

from assetrag.store import filters as F
F.all_of(F.eq("collection", "lunar"), F.has_tag("red"), F.raw(user_where))
"""

from __future__ import annotations

import json
from collections.abc import Sequence


def quote(value: str) -> str:
    """A Milvus filter string literal for `value` (JSON escaping is what Milvus' parser accepts)."""
    return json.dumps(value, ensure_ascii=False)


def eq(field: str, value: str) -> str:
    """`field == "value"`."""
    return f"{field} == {quote(value)}"


def one_of(field: str, values: Sequence[str]) -> str:
    """`field == v` for one value, `field in [...]` for several ('' for none)."""
    values = list(values)
    if not values:
        return ""
    if len(values) == 1:
        return eq(field, values[0])
    return f"{field} in [{', '.join(quote(v) for v in values)}]"


def ids_in(values: Sequence[str]) -> str:
    """Rows whose primary key is one of `values`."""
    return f"id in [{', '.join(quote(v) for v in values)}]"


def has_tag(tag: str, field: str = "tags") -> str:
    """An ARRAY field holding `tag`."""
    return f"array_contains({field}, {quote(tag)})"


def has_any_tag(tags: Sequence[str], field: str = "tags") -> str:
    """An ARRAY field holding at least one of `tags` ('' for none)."""
    tags = list(tags)
    if not tags:
        return ""
    return f"array_contains_any({field}, [{', '.join(quote(t) for t in tags)}])"


def path_under(folder_prefix: str, field: str = "path") -> str:
    """`field` starts with `folder_prefix` (a folder path ending in the separator), as a range of strings: the
    same on every backend, where `like` is not (Milvus 2.3 reads `_` literally and refuses escapes, Lite and
    later servers take `_` as a wildcard)."""
    if not folder_prefix:
        return ""
    after = folder_prefix[:-1] + chr(ord(folder_prefix[-1]) + 1)  # the first string past every one it starts
    return f"({field} >= {quote(folder_prefix)} and {field} < {quote(after)})"


def newer_than(field: str, value: int) -> str:
    return f"{field} > {int(value)}"


def raw(expression: str | None) -> str:
    """A caller's own expression (e.g. `--where`), parenthesised so it ANDs safely ('' for none)."""
    text = (expression or "").strip()
    return f"({text})" if text else ""


def all_of(*parts: str) -> str:
    """The non-empty `parts` joined with `and` ('' for none)."""
    return " and ".join(p for p in parts if p)
