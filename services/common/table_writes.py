"""A batch's table changes: in the table's memory at once, their changelog records sent together.

`table[key] = value` in Faust costs, per key, a FutureMessage, sensor calls, a pass through the
producer buffer and a send; in the triggers worker those changelog writes were the largest share of
its time (make bench, py-spy). Here a batch's changes go to the table's store directly, and the
same changelog records Faust would write (its own serialisers, the partition of the event that
caused the change) are handed to Faust's producer together and awaited in `flush`, which the
stream calls before its events are acknowledged: a commit never runs ahead of the state it covers,
and a restarted or rebalanced worker recovers the state from the changelog as Faust always does.
"""

from __future__ import annotations

import asyncio
from typing import Any

import faust


class TableWrites:
    def __init__(self, app: faust.App) -> None:
        self.app = app
        self._records: list[tuple[str, Any, Any, int, Any]] = []

    def set(self, table: faust.Table, key: Any, value: Any, partition: int) -> None:
        table.data[key] = value
        self._record(table, key, value, table.value_serializer, partition)

    def delete(self, table: faust.Table, key: Any, partition: int) -> None:
        if key in table.data:
            del table.data[key]
            self._record(table, key, None, "raw", partition)

    def _record(self, table: faust.Table, key: Any, value: Any, value_serializer: Any, partition: int) -> None:
        topic = table.changelog_topic
        raw_key, headers = topic.prepare_key(key, table.key_serializer, None, topic.prepare_headers(None))
        raw_value, headers = topic.prepare_value(value, value_serializer, None, headers)
        self._records.append((topic.get_topic_name(), raw_key, raw_value, partition, headers or None))

    async def flush(self) -> int:
        """Send every recorded change and wait until the broker has them all; returns how many."""
        records, self._records = self._records, []
        producer = self.app.producer
        sent = [await producer.send(topic, key, value, partition, None, headers)
                for topic, key, value, partition, headers in records]
        if sent:
            await asyncio.gather(*sent)
        return len(sent)
