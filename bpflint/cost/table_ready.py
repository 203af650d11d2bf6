"""TOML documents parsed once and kept ready, as marshal files: the shipped cost
table's from when bpflint is built, a budget file's in the result cache.

tomllib is pure Python: importing it and parsing bpflint/data/costs.toml took 10-15 ms
of every run, more than analysing a small object, and a budget file another 5-8 ms of
every `bpflint check`. A ready document is marshal of the plain dicts, lists, strings
and numbers TOML gives, with the SHA-256 of the text it came from; it is used only
for that very text, and anything unexpected (another text, a damaged or unreadable
file, a TOML date marshal cannot hold) means the text is parsed as before. Either way
the same checks run on the same document, so every table, budget and result is the
same.

- The shipped table: building a wheel (setup.py) writes ``costs.toml.marshal`` beside
  it. A checkout, or an edited table, parses. A table given by path (--cost-table,
  [analyze] cost_table) is always parsed.
- A budget file: `check` and `baseline` keep its document in the result cache,
  ``toml/<sha256>.marshal`` (not with --no-cache); writing it is best effort.

Standard library only: setup.py loads this file by itself, without the package.
"""

from __future__ import annotations

import hashlib
import marshal
import os
from collections.abc import Callable
from typing import Any

SUFFIX = ".marshal"
_MAGIC = "bpflint parsed TOML: 1"
TOML_DIR = "toml"  # in the result cache directory

Document = dict[str, Any]


def ready_path(toml_path: str) -> str:
    return toml_path + SUFFIX


def load(toml_path: str, text_sha256: str) -> Document | None:
    """The parsed document of the TOML file whose text has this SHA-256, if its ready
    form is beside it and was made from that text; None otherwise (parse the text)."""
    return load_file(ready_path(toml_path), text_sha256)


def write(toml_path: str, out_dir: str, text_sha256: str, doc: Document) -> bool:
    """Write the ready form of ``doc`` (parsed from the text of toml_path) into
    out_dir; False when marshal cannot hold it (a TOML date, say) or the write fails."""
    return write_file(ready_path(os.path.join(out_dir, os.path.basename(toml_path))),
                      text_sha256, doc)


def load_file(path: str, text_sha256: str) -> Document | None:
    try:
        with open(path, "rb") as ready:
            magic, sha256, doc = marshal.loads(ready.read())
    except (OSError, ValueError, EOFError, TypeError):
        return None
    if magic != _MAGIC or sha256 != text_sha256 or not isinstance(doc, dict):
        return None
    return doc


def write_file(path: str, text_sha256: str, doc: Document) -> bool:
    try:
        data = marshal.dumps((_MAGIC, text_sha256, doc))
    except ValueError:
        return False
    # renamed into place: a concurrent reader sees the whole file or none
    temporary = f"{path}.{os.getpid()}.tmp"
    try:
        with open(temporary, "wb") as out:
            out.write(data)
        os.replace(temporary, path)
    except OSError:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        return False
    return True


class Remembered:
    """Documents kept in ``directory`` (the result cache's toml/), by their text."""

    def __init__(self, directory: str) -> None:
        self.directory = directory

    def __call__(self, text: str, parse: Callable[[], Document]) -> Document:
        """The document of ``text``: the one kept for it, else ``parse()``'s, kept."""
        sha256 = hashlib.sha256(text.encode()).hexdigest()
        path = os.path.join(self.directory, sha256 + SUFFIX)
        doc = load_file(path, sha256)
        if doc is None:
            doc = parse()
            try:
                os.makedirs(self.directory, exist_ok=True)
            except OSError:
                return doc
            write_file(path, sha256, doc)
        return doc
