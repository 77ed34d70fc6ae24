"""Posts CloudEvents to ingest with the official Python SDK, as an upstream system would.

Usage: cloudevents_http.py <ingest base url> <api key>
Prints one JSON line per event: the id sent and ingest's answer.
"""
import json
import sys

import requests
from cloudevents.core.bindings.http import to_binary_event, to_structured_event
from cloudevents.core.v1.event import CloudEvent

base, key = sys.argv[1], sys.argv[2]
auth = {"Authorization": f"Bearer {key}"}

events = [
    ("binary", CloudEvent(
        {"type": "com.example.order.created", "source": "https://shop.example/orders",
         "id": "py-binary-1", "subject": "order/42", "datacontenttype": "application/json",
         "priority": "high"},
        {"order": 42, "total": "19.99"})),
    ("structured", CloudEvent(
        {"type": "com.example.order.shipped", "source": "https://shop.example/orders",
         "id": "py-structured-1", "subject": "order/42", "datacontenttype": "application/json"},
        {"order": 42, "carrier": "ups"})),
]

for mode, event in events:
    message = to_binary_event(event) if mode == "binary" else to_structured_event(event)
    response = requests.post(f"{base}/v1/events", headers={**message.headers, **auth},
                             data=message.body, timeout=30)
    print(json.dumps({"mode": mode, "id": event.get_id(), "status": response.status_code,
                      "answer": response.json()}))
