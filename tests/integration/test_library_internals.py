"""The metadata refresh ews relies on inside aiokafka (services/common/library_internals.py),
against a real broker: a topic created after a consumer started is known to it at once."""

from __future__ import annotations

import asyncio
import uuid

from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from services.common.library_internals import refresh_metadata


async def test_a_consumer_sees_a_topic_created_after_it_started(kafka_bootstrap):
    topic = f"internals-{uuid.uuid4().hex[:8]}"
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka_bootstrap)
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await consumer.start()
    await admin.start()
    try:
        assert not consumer.partitions_for_topic(topic)
        await admin.create_topics([NewTopic(topic, 3, 1)])
        for _ in range(50):  # the broker may take a moment to publish the new topic's metadata
            await refresh_metadata(consumer)
            if consumer.partitions_for_topic(topic):
                break
            await asyncio.sleep(0.1)
        assert consumer.partitions_for_topic(topic) == {0, 1, 2}
    finally:
        await admin.close()
        await consumer.stop()
