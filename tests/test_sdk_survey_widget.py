"""The JS SDK's survey widget in a real headless Chromium, through the real gateway, broker, loader and
warehouse: a running survey is fetched and shown, answered with the keyboard alone (arrow keys, Space, Tab,
Enter, Ctrl+Enter) along a branch, dismissed with Escape in another visit, not shown again after a reload
(also before the gateway has heard of the dismissal), and its events land exactly once in ClickHouse, the
answers equal to what the test typed. Screenshots of the widget go to artifacts/screenshots/.
"""

import base64
import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.browser import CHROMIUM, CTRL, Page, chromium_page
from tests.helpers import query_rows, wait_until_equal, wait_until_stored
from tests.sdk_site import Site
from tests.test_sdk_browser import SDK_SRC, open_page, reload

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium not installed: apt-get install -y chromium"
)

SCREENSHOTS = Path(__file__).parent.parent / "artifacts" / "screenshots"
ACCENT = "rgb(109, 40, 217)"
PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Boutique</title>
<style>:root { --pravis-survey-accent: #6d28d9; } button { all: unset; color: red; }</style></head>
<body><main><h1>Boutique</h1><p id="content">Shoes, bags and belts.</p>
<button id="before">Checkout</button></main>
<script type="module">
import * as sdk from '/sdk/index.js';
const params = new URLSearchParams(location.search);
window.sdk = sdk;
window.pravis = sdk.init({ apiKey: params.get('key'), ...JSON.parse(params.get('options')) });
window.pravisReady = true;
</script></body></html>
"""
SURVEY = {
    "name": "A minute for us?",
    "status": "running",
    "questions": [
        {
            "id": "visit",
            "type": "rating",
            "scale": 5,
            "text": "How was your visit?",
            "branches": [{"equals": 5, "next": "nps"}],
        },
        {"id": "improve", "type": "open_text", "text": "What should we improve?", "required": False},
        {"id": "nps", "type": "nps", "text": "How likely are you to recommend the boutique?"},
        {
            "id": "plan",
            "type": "single_choice",
            "text": "Which plan are you on?",
            "choices": ["solo", "team", "enterprise"],
            "branches": [{"equals": "solo", "next": "end"}],
        },
        {
            "id": "uses",
            "type": "multiple_choice",
            "text": "What do you use?",
            "choices": ["search", "voice", "wishlist"],
        },
    ],
    # Only the caps that matter here: the gateway stops offering it after one answer or one dismissal.
    "cap": {"max_dismissals": 1, "days_between_surveys": 0},
}
ROOT = "document.querySelector('[data-pravis-survey]').shadowRoot"
QUESTION = f"{ROOT}.querySelector('legend, .label').textContent"
FOCUSED = f"(e => e ? e.tagName + ':' + (e.value || '') : null)({ROOT}.activeElement)"
CHECKED = f"[...{ROOT}.querySelectorAll('input:checked')].map(i => i.value).join(',')"
LAYOUT = (
    "JSON.stringify([document.getElementById('content').getBoundingClientRect(), "
    "document.documentElement.scrollHeight, document.documentElement.scrollWidth])"
)


@pytest.fixture(scope="module")
def survey_key(gateway_url: str, secret_key: str) -> Iterator[str]:
    """A running survey targeting everyone, stopped afterwards so no later test's user is offered it."""
    key = f"widget-{uuid.uuid4().hex[:8]}"
    headers = {"X-API-Key": secret_key}
    saved = httpx.put(f"{gateway_url}/api/v1/surveys/{key}", json=SURVEY, headers=headers, timeout=30)
    assert saved.status_code == 201, saved.text
    yield key
    stopped = httpx.put(
        f"{gateway_url}/api/v1/surveys/{key}",
        json={**SURVEY, "status": "stopped"},
        headers=headers,
        timeout=30,
    )
    assert stopped.status_code == 201, stopped.text


@pytest.fixture
def site(gateway_url: str) -> Iterator[Site]:
    with Site(gateway_url, static={"/sdk/": SDK_SRC}, pages={"/page.html": PAGE}) as s:
        yield s


@pytest.fixture
def page(log_dir: Path) -> Iterator[Page]:
    with chromium_page(log_dir) as p:
        yield p


def show(page: Page, survey_key: str) -> None:
    """Fetch the user's surveys until the gateway offers ours; show it while the page's button has focus."""
    offered = f"s.length === 1 && s[0].id === {json.dumps(survey_key)}"
    page.wait_for(f"sdk.getSurveys().then(s => (window.offered = s) && {offered})")
    page.evaluate("document.getElementById('before').focus()")
    page.evaluate(
        "window.outcome = null; sdk.showSurvey(offered[0]).then(o => { window.outcome = o; }, "
        "e => { window.outcome = {error: String(e && e.stack)}; }); true"
    )
    page.wait_for(
        f"!!(window.outcome || document.querySelector('[data-pravis-survey]') && {ROOT}.activeElement)"
    )
    assert page.evaluate("window.outcome") is None


def press(page: Page, *keys: str, modifiers: int = 0) -> None:
    for key in keys:
        page.press(key, modifiers)


def survey_rows(clickhouse_url: str, anonymous_id: str, survey_key: str) -> list[tuple]:
    return query_rows(
        clickhouse_url,
        "SELECT event_type, survey_version, survey_answers FROM events FINAL "
        "WHERE anonymous_id = {anon:String} AND survey_id = {survey:String} ORDER BY timestamp, event_type",
        anon=anonymous_id,
        survey=survey_key,
    )


def offered_by_gateway(gateway_url: str, api_key: str, anonymous_id: str) -> list[str]:
    response = httpx.get(
        f"{gateway_url}/api/v1/surveys", params={"anonymous_id": anonymous_id}, headers={"X-API-Key": api_key}
    )
    return [s["id"] for s in response.json()["surveys"]]


def save_screenshot(page: Page, name: str) -> Path:
    shot = page.call("Page.captureScreenshot", format="png")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"survey-{name}.png"
    path.write_bytes(base64.b64decode(shot["data"]))
    return path


def test_survey_answered_by_keyboard_lands_once(
    page: Page, site: Site, api_key: str, survey_key: str, loader, clickhouse_url: str, gateway_url: str
) -> None:
    open_page(page, site, api_key)
    layout = page.evaluate(LAYOUT)
    show(page, survey_key)

    # A labelled dialog, in a corner over the page (which does not move), focus on the first choice.
    dialog = f"{ROOT}.querySelector('[role=dialog]')"
    title = f"{ROOT}.getElementById({dialog}.getAttribute('aria-labelledby')).textContent"
    assert page.evaluate(title) == "A minute for us?"
    assert page.evaluate(f"getComputedStyle({dialog}).position") == "fixed"
    assert page.evaluate(LAYOUT) == layout
    assert (page.evaluate(QUESTION), page.evaluate(FOCUSED)) == ("How was your visit?", "INPUT:1")

    press(page, "ArrowRight", "ArrowRight", "ArrowRight")  # arrow keys move through the scale and choose
    assert (page.evaluate(CHECKED), page.evaluate(FOCUSED)) == ("4", "INPUT:4")
    # Themed by the page's --pravis-survey-accent; the page's own `button` rule does not reach inside.
    assert (
        page.evaluate(f"getComputedStyle({ROOT}.querySelector('input:checked + span')).backgroundColor")
        == ACCENT
    )
    assert page.evaluate(f"getComputedStyle({ROOT}.querySelector('.primary')).color") == "rgb(255, 255, 255)"
    save_screenshot(page, "rating")
    press(page, "Enter")

    # 4 is not the branch value 5, so the open question comes next; Enter there is a new line.
    assert (page.evaluate(QUESTION), page.evaluate(FOCUSED)) == ("What should we improve?", "TEXTAREA:")
    page.type_text("Faster checkout")
    press(page, "Enter")
    page.type_text("please")
    press(page, "Enter", modifiers=CTRL)

    assert page.evaluate(QUESTION) == "How likely are you to recommend the boutique?"
    press(page, "Enter")  # required and unanswered: stays, says why
    alert = f"{ROOT}.querySelector('[role=alert]').textContent"
    assert (page.evaluate(alert), page.evaluate(f"{ROOT}.querySelector('fieldset').ariaInvalid")) == (
        "Please answer this question.",
        "true",
    )
    press(page, *["ArrowRight"] * 8)
    assert (page.evaluate(alert), page.evaluate(f"{ROOT}.querySelector('fieldset').ariaInvalid")) == (
        "",
        None,
    )
    save_screenshot(page, "nps")
    press(page, "Enter")

    assert (page.evaluate(QUESTION), page.evaluate(FOCUSED)) == ("Which plan are you on?", "INPUT:solo")
    press(page, "ArrowDown", "Enter")
    assert (page.evaluate(QUESTION), page.evaluate(FOCUSED)) == ("What do you use?", "INPUT:search")
    press(page, " ", "Tab", "Tab", " ")
    assert page.evaluate(CHECKED) == "search,wishlist"
    press(page, "Enter")

    typed = [
        {"question_id": "visit", "value": 4},
        {"question_id": "improve", "text": "Faster checkout\nplease"},
        {"question_id": "nps", "value": 8},
        {"question_id": "plan", "choices": ["team"]},
        {"question_id": "uses", "choices": ["search", "wishlist"]},
    ]
    assert page.wait_for("window.outcome") == {"outcome": "answered", "answers": typed}
    assert page.evaluate("document.activeElement.id") == "before"  # focus is back where it was
    assert page.evaluate("document.querySelector('[data-pravis-survey]')") is None
    anonymous_id = page.evaluate("pravis.anonymousId")
    assert page.evaluate("pravis.flush().then(() => pravis.stats().accepted)") == 2

    posted = [e for post in site.posts for e in post.batch.get("events", [])]
    assert sorted(e["event_type"] for e in posted) == ["survey_answered", "survey_shown"]
    assert wait_until_stored(clickhouse_url, [e["event_id"] for e in posted]) == {
        e["event_id"]: 1 for e in posted
    }
    stored = {"question_id": None, "value": None, "choices": [], "text": None}
    assert survey_rows(clickhouse_url, anonymous_id, survey_key) == [
        ("survey_shown", 1, []),
        ("survey_answered", 1, [{**stored, **answer} for answer in typed]),
    ]

    reload(page)
    assert page.evaluate("sdk.getSurveys()") == []
    assert page.evaluate(f"sdk.showSurvey({json.dumps({'id': survey_key, **SURVEY, 'version': 1})})") == {
        "outcome": "not_shown",
        "reason": "answered or dismissed on this device lately",
    }
    assert offered_by_gateway(gateway_url, api_key, anonymous_id) == []


def test_dismissed_survey_is_not_shown_again_after_a_reload(
    page: Page, site: Site, api_key: str, survey_key: str, loader, clickhouse_url: str, gateway_url: str
) -> None:
    # The gateway cannot take events for now: the reload below happens before it knows of the dismissal.
    site.script = ["503"] * 1000
    open_page(page, site, api_key, beacon=False, flushOnHide=False, maxRetries=0)
    show(page, survey_key)

    press(page, *["ArrowRight"] * 4, "Enter")  # 5 branches past the open question
    assert page.evaluate(QUESTION) == "How likely are you to recommend the boutique?"
    press(page, "Escape")

    assert page.wait_for("window.outcome") == {"outcome": "dismissed"}
    assert page.evaluate("document.activeElement.id") == "before"
    assert page.evaluate("document.querySelector('[data-pravis-survey]')") is None
    anonymous_id = page.evaluate("pravis.anonymousId")

    reload(page)
    assert offered_by_gateway(gateway_url, api_key, anonymous_id) == [survey_key]  # it has not heard yet
    assert page.evaluate("sdk.getSurveys()") == []  # the device remembers
    page.wait_for(
        "window.pravis._flushing === null && pravis.stats().queued === 2"
    )  # the adopted queue, unsent

    site.script.clear()  # the gateway takes events again
    assert page.evaluate("pravis.flush().then(() => pravis.stats().accepted)") == 2
    assert wait_until_equal(
        lambda: survey_rows(clickhouse_url, anonymous_id, survey_key),
        [("survey_shown", 1, []), ("survey_dismissed", 1, [])],
    ) == [("survey_shown", 1, []), ("survey_dismissed", 1, [])]
    assert offered_by_gateway(gateway_url, api_key, anonymous_id) == []
