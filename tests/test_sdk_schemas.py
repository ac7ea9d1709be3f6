"""Both SDKs' output validates against the published JSON Schemas (schemas/json/), batch and events."""

import json
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest
from jsonschema import Draft202012Validator, FormatChecker
from pravis_sdk import Client

ROOT = Path(__file__).parent.parent
SCHEMAS = ROOT / "schemas" / "json"
EMITTER = ROOT / "sdks" / "js" / "tests" / "fixtures" / "emit-events.mjs"
EVERY_TYPE = {
    "page_view",
    "button_click",
    "feature_use",
    "error",
    "voice_request",
    "transcription",
    "tts",
    "conversation",
    "api_request",
    "feedback",
    "experiment_exposure",
    "consent_change",
    "identify",
    "alias",
    "custom",
}
SURVEY_TYPES = {"survey_shown", "survey_dismissed", "survey_answered"}


def validator(name: str) -> Draft202012Validator:
    schema = json.loads((SCHEMAS / f"{name}.schema.json").read_text())
    return Draft202012Validator(schema, format_checker=FormatChecker())


def check(bodies: list[dict]) -> set[str]:
    """Validate each body and event; return the schema names seen."""
    seen = set()
    for body in bodies:
        validator("batch").validate(body)
        for event in body["events"]:
            name = (
                event["event_type"] if (SCHEMAS / f"{event['event_type']}.schema.json").exists() else "custom"
            )
            errors = [e.message for e in validator(name).iter_errors(event)]
            assert errors == [], (name, event, errors)
            seen.add(name)
    return seen


def python_bodies() -> list[dict]:
    bodies: list[dict] = []

    def handle(request: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(request.content))
        return httpx.Response(200, json={"status": "ok"})

    with Client(
        "pvw_x", "http://gateway.test", transport=httpx.MockTransport(handle), flush_at=1000
    ) as client:
        client.page("https://boutique.example/shoes", title="Shoes", properties={"section": "shoes"})
        client.identify("u-42", {"plan": "pro"})
        client.identify("u-7", anonymous_id="anon-cookie")
        client.alias("anon-old", "u-42")
        client.track("button_click", {"label": "Buy"}, button_id="buy")
        client.track("feature_use", feature_name="wishlist")
        client.track("error", error_type="TypeError", error_message="x is undefined")
        for event_type, extra in [
            ("voice_request", {"intent": "find red shoes"}),
            ("transcription", {"transcription_corrected": True}),
            ("tts", {}),
            ("conversation", {"completed": True, "follow_up": False, "turn_count": 4}),
        ]:
            with client.ai_call(event_type, model="whisper-small", request_size_bytes=2048, **extra) as call:
                call.set(response_size_bytes=512)
        with pytest.raises(TimeoutError), client.ai_call("tts", model="piper"):
            raise TimeoutError
        client.api_request("/products/{id}", "get", 200, 12.5, cache_hit=True)
        client.api_request("/checkout", "POST", 500, 40.0, error_type="RuntimeError")
        client.feedback(5, interaction_id="i-1", comment="great", context="voice search")
        client.track("experiment_exposure", experiment_key="checkout-v2", variant="b")
        client.set_consent({"analytics": True, "personalization": False}, source="banner")
        client.track("custom_checkout", {"cart": {"items": 3, "total": 99.5}})
        client.flush(5)
    return bodies


def test_python_sdk_output_matches_the_json_schemas() -> None:
    assert check(python_bodies()) == EVERY_TYPE


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_js_sdk_output_matches_the_json_schemas() -> None:
    out = subprocess.run(["node", str(EMITTER)], capture_output=True, text=True, timeout=60, check=True)
    assert check(json.loads(out.stdout)) == EVERY_TYPE | SURVEY_TYPES
