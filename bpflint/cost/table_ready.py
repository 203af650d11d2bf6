"""The shipped cost table, parsed once when bpflint is built instead of on every run.

Parsing bpflint/data/costs.toml with tomllib (pure Python, and its import) took
10-15 ms of every run: more than analysing a small object. Building a wheel (setup.py)
writes the parsed document beside it, ``costs.toml.marshal``: marshal of the plain
dicts, lists, strings and numbers TOML gives, with the SHA-256 of the text it came
from. A run that reads that very text uses the document; any other (a checkout, an
edited table, a file marshal cannot read) parses the text as before. Either way the
table's checks run on the same document, so the table and every result are the same.
A table given by path (--cost-table, [analyze] cost_table) is always parsed.

Standard library only: setup.py loads this file by itself, without the package.
"""

from __future__ import annotations

import marshal
import os
from typing import Any

SUFFIX = ".marshal"
_MAGIC = "bpflint cost table, parsed: 1"


def ready_path(toml_path: str) -> str:
    return toml_path + SUFFIX


def load(toml_path: str, text_sha256: str) -> dict[str, Any] | None:
    """The parsed document of the table whose text has this SHA-256, if its ready
    form is there and was made from that text; None otherwise (parse the text)."""
    try:
        with open(ready_path(toml_path), "rb") as ready:
            magic, sha256, doc = marshal.loads(ready.read())
    except (OSError, ValueError, EOFError, TypeError):
        return None
    if magic != _MAGIC or sha256 != text_sha256 or not isinstance(doc, dict):
        return None
    return doc


def write(toml_path: str, out_dir: str, text_sha256: str, doc: dict[str, Any]) -> bool:
    """Write the ready form of ``doc`` (parsed from the text of toml_path) into
    out_dir; False when marshal cannot hold it (a TOML date, say) or the write fails."""
    try:
        data = marshal.dumps((_MAGIC, text_sha256, doc))
    except ValueError:
        return False
    target = ready_path(os.path.join(out_dir, os.path.basename(toml_path)))
    try:
        with open(target + ".tmp", "wb") as out:
            out.write(data)
        os.replace(target + ".tmp", target)
    except OSError:
        return False
    return True
