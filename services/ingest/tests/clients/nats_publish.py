"""Publishes CloudEvents to QUORUM_INGEST with nats-py, as an upstream system would: one in binary
mode (ce- headers, the data as the payload), one structured (a JSON CloudEvent as the payload).

Usage: nats_publish.py <nats url> <tenant>
"""
import asyncio
import json
import sys

import nats


async def main(url: str, tenant: str) -> None:
    nc = await nats.connect(url)
    js = nc.jetstream()
    subject = f"quorum.ingest.{tenant}.com.example.sensor.read"
    binary = {"ce-specversion": "1.0", "ce-id": "py-nats-1", "ce-source": "nats://plant/sensors",
              "ce-type": "com.example.sensor.read", "ce-subject": "sensor/7",
              "content-type": "application/json"}
    ack = await js.publish(subject, json.dumps({"celsius": 21.5}).encode(), headers=binary)
    print(json.dumps({"id": "py-nats-1", "seq": ack.seq}))
    structured = {"specversion": "1.0", "id": "py-nats-2", "source": "nats://plant/sensors",
                  "type": "com.example.sensor.read", "subject": "sensor/7",
                  "datacontenttype": "application/json", "data": {"celsius": 22.0}}
    ack = await js.publish(subject, json.dumps(structured).encode())
    print(json.dumps({"id": "py-nats-2", "seq": ack.seq}))
    await nc.close()


asyncio.run(main(sys.argv[1], sys.argv[2]))
