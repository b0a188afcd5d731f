"""The screenshot helper of the browser tests, without a browser: a node that a re-render replaced
(detached, or attached but not laid out yet) is waited for and shot again; any other error is
raised at once, so a real failure is not hidden behind retries."""

from __future__ import annotations

import browser_util
import pytest


class FlakyLocator:
    """A stand-in for a Playwright locator whose first ``failures`` screenshots raise ``message``."""

    def __init__(self, failures: int, message: str) -> None:
        self.failures, self.message = failures, message
        self.shots = self.waits = 0

    def scroll_into_view_if_needed(self) -> None:
        pass

    def wait_for(self, state: str, timeout: int) -> None:
        assert state == "visible" and timeout > 0
        self.waits += 1

    def screenshot(self, path: str) -> None:
        self.shots += 1
        if self.shots <= self.failures:
            raise RuntimeError(f"Locator.screenshot: {self.message}")
        with open(path, "wb") as f:
            f.write(b"png")


@pytest.fixture
def no_sleep(monkeypatch, tmp_path):
    monkeypatch.setattr(browser_util.time, "sleep", lambda s: None)
    monkeypatch.setattr(browser_util, "OUT", tmp_path / "out")


@pytest.mark.parametrize("message", ["Node is either not visible or not an HTMLElement",
                                     "Element is not attached to the DOM"])
def test_a_replaced_node_is_waited_for_and_shot_again(no_sleep, tmp_path, message):
    loc = FlakyLocator(2, message)
    path = browser_util.shot(None, loc, tmp_path, "view.png")
    assert (loc.shots, loc.waits) == (3, 2)
    assert path.read_bytes() == b"png" and (tmp_path / "out" / "view.png").read_bytes() == b"png"


def test_a_node_that_never_shows_fails_after_four_tries(no_sleep, tmp_path):
    loc = FlakyLocator(10, "Node is either not visible or not an HTMLElement")
    with pytest.raises(RuntimeError, match="not visible"):
        browser_util.shot(None, loc, tmp_path, "view.png")
    assert loc.shots == 4


def test_any_other_error_is_raised_at_once(no_sleep, tmp_path):
    loc = FlakyLocator(1, "Timeout 30000ms exceeded")
    with pytest.raises(RuntimeError, match="Timeout"):
        browser_util.shot(None, loc, tmp_path, "view.png")
    assert (loc.shots, loc.waits) == (1, 0)
