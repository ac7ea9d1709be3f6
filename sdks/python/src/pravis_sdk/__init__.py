"""Pravis analytics client for Python services.

```python
from pravis_sdk import Client

client = Client(api_key, "https://analytics.example")      # a daemon thread batches and retries
client.track("feature_use", {"plan": "pro"}, user_id="u-42", feature_name="wishlist")
with client.ai_call("voice_request", model="whisper-small", intent="find red shoes") as call:
    answer = assistant(audio)
client.feedback(5, interaction_id=call.interaction_id, user_id="u-42")
client.shutdown()                                            # also runs at interpreter exit
```

`AsyncClient` is the asyncio twin; `PravisMiddleware` (ASGI) and `PravisWSGIMiddleware` / `instrument_flask`
emit `api_request` events for every served request.
"""

from pravis_sdk.aio import AsyncClient
from pravis_sdk.asgi import PravisMiddleware
from pravis_sdk.buffer import DeliveryError, Stats
from pravis_sdk.client import Client
from pravis_sdk.experiments import get_feature_variant
from pravis_sdk.policy import RetryPolicy
from pravis_sdk.tracking import AICall, current_ai_call
from pravis_sdk.wsgi import PravisWSGIMiddleware, instrument_flask

__all__ = [
    "AICall",
    "AsyncClient",
    "Client",
    "DeliveryError",
    "PravisMiddleware",
    "PravisWSGIMiddleware",
    "RetryPolicy",
    "Stats",
    "current_ai_call",
    "get_feature_variant",
    "instrument_flask",
]
