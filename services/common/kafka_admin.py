"""Create every ews topic idempotently and check the ones that exist match their spec."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import TopicAlreadyExistsError

from .outage import is_transient
from .settings import Settings
from .topics import Topics

log = logging.getLogger(__name__)


class TopicMismatch(RuntimeError):
    """An existing topic differs from what ews needs; the message says how to fix it."""


async def _wait_for_leaders(
    admin: AIOKafkaAdminClient, names: list[str], timeout_s: float = 30.0
) -> None:
    """New topics take a moment to get partition leaders; workers must not start before that."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        described = await admin.describe_topics(names)
        waiting = [
            d["topic"]
            for d in described
            if d.get("error_code")
            or not d["partitions"]
            or any(p["leader"] < 0 for p in d["partitions"])
        ]
        if not waiting:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(
                f"topics without partition leaders after {timeout_s:.0f}s: {', '.join(waiting)}"
            )
        await asyncio.sleep(0.2)


async def ensure_topics(
    settings: Settings,
    wait_s: float | None = 30.0,
    say: Callable[[str], None] = log.warning,
) -> list[str]:
    """Create missing topics; return the names created. Waits for the cluster to answer: `wait_s`
    seconds, or for as long as it takes when None (a worker started before its broker), saying so
    when it starts waiting and every minute after."""
    started = time.monotonic()
    told = 0.0
    while True:
        try:
            return await _ensure_topics_once(settings)
        except Exception as error:
            if not is_transient(error):
                raise
            waited = time.monotonic() - started
            if wait_s is not None and waited >= wait_s:
                raise
            if not told or waited - told >= 60:
                told = max(waited, 1e-9)
                say(
                    f"waiting for the Kafka broker at {settings.kafka_bootstrap} "
                    f"({waited:.0f} s so far): {error}"
                )
            await asyncio.sleep(1)


async def _ensure_topics_once(settings: Settings) -> list[str]:
    topics = Topics(settings.topic_namespace)
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap, client_id="ews-admin")
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [
            NewTopic(
                name=spec.name,
                num_partitions=spec.partitions or settings.topic_partitions,
                replication_factor=settings.topic_replication_factor,
                topic_configs=spec.config(settings.topic_min_insync_replicas),
            )
            for spec in topics.specs()
        ]
        missing = [t for t in wanted if t.name not in existing]
        created = []
        if missing:
            try:
                await admin.create_topics(missing)
                created = [t.name for t in missing]
            except TopicAlreadyExistsError:  # another worker won the race
                pass
        await _wait_for_leaders(admin, [t.name for t in wanted])
        present = [t for t in wanted if t.name in existing]
        if present:
            described = await admin.describe_topics([t.name for t in present])
            for info in described:
                spec = next(t for t in present if t.name == info["topic"])
                have = len(info["partitions"])
                if have != spec.num_partitions:
                    raise TopicMismatch(
                        f"topic {spec.name} has {have} partitions, ews is configured for "
                        f"{spec.num_partitions}: set EWS_TOPIC_PARTITIONS={have} or recreate the "
                        "topic"
                    )
        if present:
            await _check_configs(admin, present)
        return created
    finally:
        await admin.close()


CHECKED_CONFIGS = ("cleanup.policy", "min.insync.replicas")


async def _check_configs(admin: AIOKafkaAdminClient, topics: list[NewTopic]) -> None:
    """Existing topics must have the cleanup policy and min.insync.replicas ews needs; say how to
    fix it."""
    resources = [ConfigResource(ConfigResourceType.TOPIC, t.name) for t in topics]
    responses = await admin.describe_configs(resources)
    actual: dict[str, dict[str, str]] = {}
    for response in responses:
        for _error, _message, _type, name, entries in response.resources:
            actual[name] = {entry[0]: entry[1] for entry in entries}
    problems = []
    for topic in topics:
        for key in CHECKED_CONFIGS:
            want, have = topic.topic_configs.get(key), actual.get(topic.name, {}).get(key)
            if want is not None and have is not None and want != have:
                problems.append(
                    f"topic {topic.name}: {key} is {have}, ews needs {want} "
                    f"(kafka-configs.sh --alter --entity-type topics --entity-name {topic.name} "
                    f"--add-config {key}={want})"
                )
    if problems:
        raise TopicMismatch("\n".join(problems))
