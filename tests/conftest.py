"""Session-wide test set-up."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True, scope="session")
def _private_result_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Keep the result cache of every in-process bpflint run out of ~/.cache."""
    mp = pytest.MonkeyPatch()
    mp.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg-cache")))
    yield
    mp.undo()


@pytest.fixture(autouse=True, scope="session")
def _installs_stay_pure_python() -> Iterator[None]:
    """Tests that pip-install this checkout (the pre-commit hook, the Action) build it
    pure Python: a compiled build takes a minute or more. tests/test_install.py lifts
    this for its one compiled build."""
    mp = pytest.MonkeyPatch()
    mp.setenv("BPFLINT_NO_COMPILE", "1")
    yield
    mp.undo()
