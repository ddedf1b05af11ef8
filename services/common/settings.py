"""The one settings object: every default lives here, every value can be set as an
EWS_* variable."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from schemas.types import Duration, as_timedelta, parse_duration

PROJECT_ROOT = Path(__file__).resolve().parents[2]


CapLevel = Literal["watch", "warning", "emergency", "resolved"]


def _cap_expires() -> dict[CapLevel, str]:
    return {"watch": "P2D", "warning": "P1D", "emergency": "PT12H", "resolved": "PT6H"}


class Settings(BaseSettings):
    """Deployment settings. Read from the environment (`EWS_KAFKA_BOOTSTRAP=...`) or
    a `.env` file."""

    model_config = SettingsConfigDict(env_prefix="EWS_", env_file=".env", extra="ignore")

    kafka_bootstrap: str = Field(
        "127.0.0.1:9092", description="Kafka bootstrap servers, comma separated"
    )
    topic_namespace: str = Field("ews", description="prefix of every topic and consumer group")
    topic_partitions: int = Field(4, ge=1)
    topic_replication_factor: int = Field(1, ge=1)
    topic_min_insync_replicas: int = Field(1, ge=1)

    config_dir: Path = Field(
        PROJECT_ROOT / "config", description="triggers.yaml, sites.yaml, contacts.yaml"
    )
    contacts_file: Path | None = Field(
        None, description="contacts file; default CONFIG_DIR/contacts.yaml"
    )
    data_dir: Path = Field(
        PROJECT_ROOT / ".cache" / "data", description="worker-local state (Faust)"
    )

    tokens_file: Path | None = Field(None, description="YAML file of API bearer tokens with roles")
    tokens: SecretStr | None = Field(
        None, description='tokens inline: "name:role:token;name:role:token"'
    )

    # Ingest
    feed_http_max_bytes: int = Field(
        5_000_000, description="largest POST /feeds body; larger gets 413"
    )
    feed_http_answer_s: float = Field(
        60.0,
        gt=0,
        description="how long POST /feeds waits for each item's "
        "de-duplication before answering 'pending' (the item stays queued)",
    )
    dedup_retention: str = Field(
        "P30D",
        description="how long a seen event_id is remembered at least (ISO 8601); ingest keeps it "
        "as long as the rules in triggers.yaml can still count the report, if that is longer",
    )
    # A report whose period ends later than this after the wall clock is refused as `future`: a
    # partner may send the running count of the day in progress (its period ends within a day), but
    # a report ending later is a wrong year or a wrong clock, and accepted it would move its scopes'
    # watermark ahead and make every true report after it too late.
    max_future: str = Field("P1D", description="ISO 8601 duration")
    # Periods longer than this are refused (`out_of_range`): feeds report days, weeks or months.
    max_period: str = Field("P1Y", description="ISO 8601 duration")

    web_host: str = Field(
        "127.0.0.1",
        description="the address every worker's HTTP API listens on (and advertises); 0.0.0.0 "
        "listens on every interface",
    )
    monitoring_host: str | None = Field(
        None,
        description="serve /metrics, /healthz and /readyz on this address too (the monitoring "
        "network), at each worker's web port + EWS_MONITORING_PORT_OFFSET, and /metrics there "
        "only; unset: all on the API address",
    )
    monitoring_port_offset: int = Field(100, ge=1, le=10000)
    ingest_web_port: int = 6061
    triggers_web_port: int = 6062
    notify_web_port: int = 6063

    log_level: str = "info"
    stall_timeout_s: float = Field(
        20.0,
        description="a worker with messages waiting and no progress this long resumes, then "
        "restarts",
    )
    # Consumer-group timing. Low values make a restarted worker rejoin in seconds.
    broker_session_timeout_s: float = 10.0
    broker_heartbeat_interval_s: float = 1.0
    broker_rebalance_timeout_s: float = 20.0
    instance_id: str | None = Field(
        None,
        description="this worker's stable name in its consumer groups (Kafka static membership): "
        "restarted under the same name it takes its partitions back at once instead of waiting out "
        "the session timeout; unique per worker (a StatefulSet's pod name)",
    )

    # Observations older than the newest one at a scope by more than this still land in
    # their window; older ones are kept out of the aggregates and counted as too late.
    allowed_lateness: str = Field("P7D", description="ISO 8601 duration")

    # Triggers
    rules_reload_interval_s: float = Field(
        2.0, description="how often workers look for changed rule and sites files"
    )
    silence_check_interval_s: float = Field(
        60.0, description="how often the wall-clock silence check runs"
    )
    # Observations reaching a scope within this many seconds of each other are judged together,
    # tick by tick in event-time order, so their arrival order does not change the transitions
    # (live then agrees with `ews backtest`). 0 judges each batch the worker fetched as soon as
    # it is read: fastest alerts, order-independent only within a batch.
    evaluation_settle_s: float = Field(
        0.0, ge=0, description="seconds to wait for more reports before judging a scope"
    )

    # Notify
    sharing_file: Path | None = Field(
        None, description="sharing policy; default CONFIG_DIR/sharing.yaml"
    )
    public_url: str | None = Field(
        None, description="how contacts reach the notify API, for acknowledgement links"
    )
    link_secret: SecretStr | None = Field(
        None,
        min_length=32,
        description="signs the one-click acknowledgement links in messages (with EWS_PUBLIC_URL); "
        "the same on every notify worker",
    )
    id_secret: SecretStr | None = Field(
        None,
        min_length=32,
        description="keys the identifiers outside readers see for alerts about places a country "
        "withholds (sharing policy `aggregates`); the same on every notify worker; default "
        "EWS_LINK_SECRET; one of them is needed when a country withholds",
    )
    accounts_file: Path | None = Field(
        None, description="YAML file of console accounts (argon2id hashes); no file, no console"
    )
    console_secret: SecretStr | None = Field(
        None,
        min_length=32,
        description="signs console sessions and form tokens; the same on every notify worker; "
        "default EWS_LINK_SECRET; one of them is needed when EWS_ACCOUNTS_FILE is set",
    )
    console_session_ttl: Duration = Field("PT12H", description="how long a console sign-in lasts")
    cap_sender: str = Field(
        "ews@early-warning.americas",
        description="CAP <sender>: the publishing authority's address, e.g. alerts@snm.gob.pa",
    )
    cap_oid: str | None = Field(
        None,
        pattern=r"^[0-2](\.(0|[1-9][0-9]*))+$",
        description="the WMO register OID of the publisher (e.g. 2.49.0.1.591.0): CAP identifiers "
        "become urn:oid:<oid>.<year>.<month>.<day>.<hour>.<minute>.<second>.<number>",
    )
    cap_expires: dict[CapLevel, Duration] = Field(
        default_factory=_cap_expires,
        description="how long after it is sent each level's CAP <info> expires (JSON)",
    )
    cap_site_radius_km: float = Field(
        10.0, gt=0, le=500, description="the radius of a site's CAP <circle>, in km"
    )
    cap_all_languages: bool = Field(
        False,
        description="every CAP message carries one <info> per language, not only the contact's",
    )
    area_shapes_file: Path | None = Field(
        None,
        description="GeoJSON FeatureCollection of area shapes (properties.id: the area's ISO "
        "3166-2 code); CAP gives those areas a <polygon>",
    )
    ack_link_ttl: Duration = Field("P7D", description="how long an acknowledgement link works")
    repeat_interval: str = Field(
        "PT4H", description="repeat a firing, unacknowledged alert this often"
    )
    escalate_after: str = Field(
        "PT1H", description="also tell escalation contacts if unacknowledged this long"
    )
    reminder_check_interval_s: float = 30.0
    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_from: str = "ews@localhost"
    smtp_starttls: bool = True
    smtp_ca_file: Path | None = Field(
        None, description="CA bundle that signs the SMTP server's certificate"
    )
    smtp_timeout_s: float = 15.0

    # Delivery
    allow_private_webhooks: bool = Field(
        False, description="allow http:// and private/loopback webhook targets"
    )
    webhook_timeout_s: float = 10.0
    delivery_max_attempts: int = Field(
        300,
        ge=1,
        description="attempts before dead-lettering (with the 300 s backoff cap, about "
        "as many as EWS_DELIVERY_MAX_AGE allows)",
    )
    delivery_max_age: Duration = Field(
        "PT24H",
        description="dead-letter a delivery whose next attempt would be this long after its first",
    )
    retry_after_max: Duration = Field(
        "PT6H", description="honour a receiver's Retry-After up to this long"
    )
    delivery_backoff_initial_s: float = 1.0
    delivery_backoff_max_s: float = 300.0
    delivery_scan_interval_s: float = Field(
        0.5, gt=0, description="how often notify looks for deliveries whose time has come"
    )
    delivery_concurrency: int = Field(
        32, ge=1, description="deliveries a notify worker attempts at once (to different receivers)"
    )

    @property
    def delivery_max_age_s(self) -> float:
        return as_timedelta(parse_duration(self.delivery_max_age)).total_seconds()

    @property
    def retry_after_max_s(self) -> float:
        return as_timedelta(parse_duration(self.retry_after_max)).total_seconds()

    @property
    def triggers_file(self) -> Path:
        return self.config_dir / "triggers.yaml"

    @property
    def sites_file(self) -> Path:
        return self.config_dir / "sites.yaml"

    @property
    def resolved_sharing_file(self) -> Path:
        return self.sharing_file or self.config_dir / "sharing.yaml"

    @property
    def resolved_contacts_file(self) -> Path:
        return self.contacts_file or self.config_dir / "contacts.yaml"

    @property
    def kafka_url(self) -> str:
        """The bootstrap list in the form Faust expects (kafka://a:9092;b:9092)."""
        return "kafka://" + ";".join(s.strip() for s in self.kafka_bootstrap.split(","))


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
