"""End to end in a real headless Chromium: the JS SDK on a page, through the real gateway and loader.

The page and the gateway share one origin (tests/sdk_site.py forwards /api to the gateway), so no CORS
setup is needed. Skipped only when Debian's `chromium` is not installed (`apt-get install -y chromium`).
"""

import json
import uuid
from pathlib import Path
from urllib.parse import quote

import pytest
from pravis_rollups.clickhouse import connect

from tests.browser import CHROMIUM, chromium_page
from tests.helpers import journey_rows, persons_of, wait_until_equal, wait_until_stored
from tests.sdk_site import Site

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium not installed: apt-get install -y chromium"
)

SDK_SRC = Path(__file__).parent.parent / "sdks" / "js" / "src"
PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Pravis SDK test page</title></head><body>
<script type="module">
import { init } from '/sdk/index.js';
const params = new URLSearchParams(location.search);
window.pravis = init({ apiKey: params.get('key'), ...JSON.parse(params.get('options')) });
window.pravisReady = true;
</script></body></html>
"""
TRACK_THREE = """[
  pravis.page({section: 'shoes'}),
  pravis.track('button_click', {n: 1}, {button_id: 'add-to-cart'}),
  pravis.feedback({rating: 4, interactionId: 'i-browser', comment: 'ok'}),
]"""
QUEUE_KEYS = "Object.keys(localStorage).filter(k => k.startsWith('pravis:q:')).length"


@pytest.fixture
def site(gateway_url: str):
    with Site(gateway_url, static={"/sdk/": SDK_SRC}, pages={"/page.html": PAGE}) as s:
        yield s


@pytest.fixture
def page(log_dir: Path):
    with chromium_page(log_dir) as p:
        yield p


def open_page(page, site: Site, api_key: str, **options) -> None:
    options = {"flushAt": 100, "flushIntervalMs": 600_000, **options}
    page.goto(f"{site.url}/page.html?key={api_key}&options={quote(json.dumps(options))}")
    page.wait_for("window.pravisReady === true")


def reload(page) -> None:
    page.reload()
    page.wait_for("window.pravisReady === true")


def test_flush_at_batch_arrives_once(page, site: Site, api_key: str, loader, clickhouse_url: str) -> None:
    open_page(page, site, api_key, flushAt=3)

    ids = page.evaluate(TRACK_THREE)
    page.wait_for("pravis.stats().accepted === 3")

    assert [post.event_ids for post in site.posts] == [ids]
    assert site.posts[0].headers["x-api-key"] == api_key
    assert wait_until_stored(clickhouse_url, ids) == dict.fromkeys(ids, 1)
    with connect(clickhouse_url) as ch:
        rows = ch.query(
            "SELECT event_type, page_url LIKE {url:String}, locale != '' FROM events FINAL "
            "WHERE event_id IN {ids:Array(UUID)} ORDER BY event_type",
            parameters={"ids": ids, "url": f"{site.url}/page.html%"},
        ).result_rows
    assert rows == [("button_click", True, True), ("feedback", True, True), ("page_view", True, True)]


def test_gateway_down_then_reload_sends_the_persisted_queue_once(
    page, site: Site, api_key: str, loader, clickhouse_url: str
) -> None:
    site.script = ["503"] * 1000
    open_page(page, site, api_key, flushAt=3, maxRetries=1, retryBaseMs=50, beacon=False, flushOnHide=False)
    ids = page.evaluate(TRACK_THREE)
    page.wait_for("window.pravis._flushing === null && pravis.stats().queued === 3")
    assert {post.answered for post in site.posts} == {503}
    assert page.evaluate(QUEUE_KEYS) == 1

    site.script.clear()  # the gateway is back
    reload(page)
    page.wait_for("pravis.stats().accepted === 3 && pravis.stats().queued === 0")

    assert sorted(site.posted_ids()) == sorted(ids)  # sent by the new page, from the adopted queue, once
    assert page.evaluate(QUEUE_KEYS) == 0
    assert wait_until_stored(clickhouse_url, ids) == dict.fromkeys(ids, 1)


def test_reload_mid_queue_hands_events_to_send_beacon_once(
    page, site: Site, api_key, loader, clickhouse_url
) -> None:
    open_page(page, site, api_key, beacon=True, flushOnHide=False)
    ids = page.evaluate(TRACK_THREE)
    assert site.posts == []

    reload(page)
    stored = wait_until_stored(clickhouse_url, ids)

    assert stored == dict.fromkeys(ids, 1)
    assert len(site.posts) == 1
    beacon = site.posts[0]
    assert beacon.query.get("api_key") == [api_key] and "x-api-key" not in beacon.headers
    assert beacon.headers["content-type"].startswith("text/plain")
    assert (sorted(beacon.event_ids), beacon.answered) == (sorted(ids), 200)
    assert page.evaluate("pravis.stats().queued") == 0  # not sent again by the new page
    assert page.evaluate(QUEUE_KEYS) == 0


def test_reload_mid_queue_with_default_options_arrives_once(
    page, site: Site, api_key: str, loader, clickhouse_url: str
) -> None:
    open_page(page, site, api_key)
    ids = page.evaluate(TRACK_THREE)

    reload(page)
    stored = wait_until_stored(clickhouse_url, ids)

    assert stored == dict.fromkeys(ids, 1)
    assert sorted(site.posted_ids()) == sorted(ids)  # keepalive fetch on hide or beacon on pagehide, not both
    assert page.evaluate("pravis.stats().queued") == 0


def test_login_logout_and_second_user_on_one_device(
    page, site: Site, api_key: str, loader, clickhouse_url: str
) -> None:
    run = uuid.uuid4().hex[:8]
    first_user, second_user = f"u-first-{run}", f"u-second-{run}"
    open_page(page, site, api_key)
    journey = page.evaluate(
        """(async (firstUser, secondUser) => {
          const device = [pravis.anonymousId];
          const sent = [
            pravis.page({section: 'shoes'}),
            pravis.identify(firstUser, {plan: 'pro'}),
            pravis.track('feature_use', {}, {feature_name: 'wishlist'}),
          ];
          pravis.identify(null);
          device.push(pravis.anonymousId);
          sent.push(pravis.page({section: 'home'}), pravis.identify(secondUser));
          await pravis.flush();
          return {device, sent};
        })"""
        + f"({json.dumps(first_user)}, {json.dumps(second_user)})"
    )
    device, sent = journey["device"], journey["sent"]
    assert page.evaluate("pravis.stats().accepted") == len(sent)

    # What the journey should have sent, spelled out here, not read back from the SDK: one session across the
    # login, a new one after the logout.
    expected = [
        ("page_view", None, device[0], 0, None),
        ("identify", first_user, device[0], 0, None),
        ("feature_use", first_user, device[0], 0, None),
        ("page_view", None, device[1], 1, None),
        ("identify", second_user, device[1], 1, None),
    ]
    assert wait_until_stored(clickhouse_url, sent) == dict.fromkeys(sent, 1)
    assert journey_rows(clickhouse_url, sent) == expected
    ids, persons = [*device, first_user, second_user], {device[0]: first_user, device[1]: second_user}
    assert wait_until_equal(lambda: persons_of(clickhouse_url, ids), persons) == persons
