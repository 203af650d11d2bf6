"""The few GitHub REST calls the Action makes: find its comment on a pull request,
create it once, update it in place (urllib: no dependency)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

API_VERSION = "2022-11-28"
TIMEOUT_S = 30.0
PER_PAGE = 100
MAX_PAGES = 30  # 3,000 comments: past that, a new comment is posted


class ApiError(Exception):
    """A call that failed: HTTP status (0 when there was no answer) and GitHub's message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}" if status else message)
        self.status = status


@dataclass(frozen=True)
class Posted:
    comment_id: int
    url: str
    created: bool  # False: an earlier comment was updated


@dataclass(frozen=True)
class Client:
    api_url: str  # $GITHUB_API_URL: https://api.github.com, or a GHES host's /api/v3
    token: str
    repository: str  # owner/name

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode("utf-8")
        request = urllib.request.Request(
            self.api_url.rstrip("/") + path, data=data, method=method,
            headers={"Accept": "application/vnd.github+json",
                     "Authorization": f"Bearer {self.token}",
                     "X-GitHub-Api-Version": API_VERSION,
                     "User-Agent": "bpflint-action",
                     **({"Content-Type": "application/json"} if data is not None else {})})
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            raise ApiError(exc.code, _message(exc)) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ApiError(0, f"{self.api_url}: {reason}") from None
        except ValueError:  # a malformed URL or header; its text may hold the token
            raise ApiError(0, f"{method} {self.api_url}{path}: not a valid request "
                              "(check GITHUB_API_URL and github-token)") from None
        try:
            return json.loads(raw) if raw else None
        except ValueError:
            raise ApiError(0, f"{method} {path}: the answer is not JSON") from None

    def find_comment(self, issue: int, marker: str) -> int | None:
        """The id of the newest comment whose body starts with ``marker``."""
        found = None
        for page in range(1, MAX_PAGES + 1):
            comments = self._call(
                "GET", f"/repos/{self.repository}/issues/{issue}/comments"
                       f"?per_page={PER_PAGE}&page={page}")
            if not isinstance(comments, list):
                break
            for comment in comments:
                if isinstance(comment, dict) and isinstance(comment.get("id"), int) and \
                        str(comment.get("body", "")).startswith(marker):
                    found = comment["id"]
            if len(comments) < PER_PAGE:
                break
        return found

    def upsert_comment(self, issue: int, marker: str, body: str) -> Posted:
        """Update this Action's comment on the pull request, or create it."""
        existing = self.find_comment(issue, marker)
        if existing is not None:
            answer = self._call("PATCH", f"/repos/{self.repository}/issues/comments/{existing}",
                                {"body": body})
            return Posted(existing, str((answer or {}).get("html_url", "")), created=False)
        answer = self._call("POST", f"/repos/{self.repository}/issues/{issue}/comments",
                            {"body": body})
        if not isinstance(answer, dict) or not isinstance(answer.get("id"), int):
            raise ApiError(0, "creating the comment: the answer has no comment id")
        return Posted(answer["id"], str(answer.get("html_url", "")), created=True)


def _message(exc: urllib.error.HTTPError) -> str:
    try:
        return str(json.loads(exc.read()).get("message") or exc.reason)
    except (ValueError, AttributeError, OSError):
        return str(exc.reason)
