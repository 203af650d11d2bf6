"""The pull-request comment: check's Markdown report with unchanged programs folded
away, under a hidden marker that finds the comment again, and within GitHub's size
limit for a comment body."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

# GitHub rejects a comment body over 65,536 characters; keep a margin for how it
# counts (code units, line endings).
MAX_BODY_CHARS = 65_000
_TABLE_HEADER = "| | Program | Budget | Before | After | Delta |"


def marker(identity: str) -> str:
    """The hidden first line that tells this Action's comment (for this budget file)
    apart from every other comment on the pull request."""
    safe = identity.replace("--", "- -").replace(">", "")
    return f"<!-- bpflint-action: {safe} -->"


def unchanged_keys(report: Mapping[str, Any]) -> set[str]:
    """Programs that pass and cost exactly what they cost at the base."""
    keys = set()
    for program in report.get("programs", []):
        delta = program.get("delta") or {}
        if (program.get("verdict") == "pass" and program.get("change") == "same"
                and delta.get("insns") == 0 and delta.get("ns") in (0, None)):
            keys.add(str(program.get("key")))
    return keys


def _row_key(line: str) -> str | None:
    """The program key of a table row written by bpflint.report.markdown."""
    cells = line.split(" | ")
    if len(cells) < 3 or not line.startswith("| "):
        return None
    key = cells[1]
    if len(key) >= 2 and key.startswith("`") and key.endswith("`"):
        return key[1:-1].replace("\\|", "|")
    return None


def _fold_unchanged(lines: list[str], unchanged: set[str], listed: bool = True) -> list[str]:
    """Move the rows of unchanged programs out of the table into a details block (or,
    not ``listed``, leave only their number)."""
    try:
        start = lines.index(_TABLE_HEADER)
    except ValueError:
        return lines
    end = start + 2
    while end < len(lines) and lines[end].startswith("| "):
        end += 1
    rows = lines[start + 2:end]
    kept = [row for row in rows if _row_key(row) not in unchanged]
    folded = [row for row in rows if _row_key(row) in unchanged]
    if not folded:
        return lines
    noun = "program" if len(folded) == 1 else "programs"
    table = lines[start:start + 2] + kept if kept else []
    details = ["", f"<details><summary>{len(folded)} unchanged {noun}</summary>", "",
               *lines[start:start + 2], *folded, "", "</details>"] if listed else \
        ["", f"{len(folded)} unchanged {noun} (not listed, to fit the comment size limit)."]
    if not kept:  # drop the blank line the empty table would have ended
        details = details[1:]
    after = lines[end:]
    if after and after[0].strip():  # Markdown resumes only after a blank line
        after = ["", *after]
    return lines[:start] + table + details + after


def _truncate(lines: list[str], limit: int, note: str) -> tuple[list[str], int]:
    """Whole lines from the top while they fit, open <details> blocks closed, then the
    note; and how many of ``lines`` were kept."""
    kept: list[str] = []
    size = 0
    depth = 0
    in_fence = False
    reserve = len(note) + 64  # the note, the number put into it, the closing tags
    for line in lines:
        closing = len("\n</details>") * (depth + line.count("<details>"))
        if size + len(line) + 1 + closing + reserve > limit:
            break
        kept.append(line)
        size += len(line) + 1
        depth += line.count("<details>") - line.count("</details>")
        in_fence ^= line.startswith("```")
    taken = len(kept)
    if in_fence:
        kept.append("```")
    if kept and kept[-1].startswith("|"):
        kept.append("")  # end the table before the note
    kept += ["</details>"] * max(depth, 0)
    return [*kept, "", note], taken


def build(identity: str, markdown_text: str, report: Mapping[str, Any] | None,
          errors: Sequence[str] = (), limit: int = MAX_BODY_CHARS, footer: str = "") -> str:
    """The comment body: marker, check's Markdown (or what stopped it), folded and,
    when still too long, cut with a note saying where the whole report is; then the
    footer (a link to the run), which is never cut."""
    if footer:
        return build(identity, markdown_text, report, errors,
                     limit - len(footer) - 2).rstrip("\n") + "\n\n" + footer + "\n"
    def compose(listed: bool) -> list[str]:
        lines = [marker(identity)]
        if markdown_text.strip():
            body = markdown_text.rstrip("\n").splitlines()
            lines += _fold_unchanged(body, unchanged_keys(report or {}), listed)
        if errors:
            lines += ["", "### bpflint could not check the budgets", "", "```",
                      *(e.replace("```", "'''") for e in errors), "```"]
        return lines

    for listed in (True, False):
        lines = compose(listed)
        text = "\n".join(lines) + "\n"
        if len(text) <= limit:
            return text
    total = len(lines)
    note = ("**The report was cut to fit GitHub's comment size limit "
            f"(65,536 characters); {{left}} of {total} lines are left out.** The whole "
            "table is in the job summary and in the JSON report (the `report` output).")
    cut, taken = _truncate(lines, limit, note)
    cut[-1] = note.format(left=total - taken)
    return "\n".join(cut) + "\n"
