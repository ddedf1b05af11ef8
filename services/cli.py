"""`ews`: the command line of the service (workers, local Kafka, config checks, the demo)."""

from __future__ import annotations

import asyncio
import gc
import importlib
import sys
from collections import Counter
from datetime import UTC
from pathlib import Path

import click

from services.common.config_files import ConfigError
from services.common.settings import get_settings

SERVICES = ("ingest", "triggers", "notify")


@click.group()
def main() -> None:
    """ews — early warning for mass migration and displacement in the Americas."""


@main.command()
@click.argument("service", type=click.Choice(SERVICES))
def worker(service: str) -> None:
    """Run one worker of SERVICE (ingest, triggers or notify)."""
    import faust

    from services.common.config_check import check_worker
    from services.common.exits import EXIT_CONFIG
    from services.common.kafka_admin import TopicMismatch, ensure_topics
    from services.common.outage import quiet_connection_errors

    settings = get_settings()
    problems = check_worker(settings, service)
    app = None
    if not problems:
        try:
            app = importlib.import_module(f"services.{service}.app").create_app(settings)
        except ConfigError as exc:
            problems = exc.problems
    if problems or app is None:
        click.echo("\n".join(problems), err=True)
        click.echo(
            f"ews {service}: configuration refused; fix the lines above and start again "
            f"(exit {EXIT_CONFIG}: not restarted)",
            err=True,
        )
        sys.exit(EXIT_CONFIG)
    quiet_connection_errors()
    try:  # a worker started before its broker waits for it, as it rides out an outage later
        created = asyncio.run(
            ensure_topics(settings, wait_s=None, say=lambda line: click.echo(line, err=True))
        )
    except TopicMismatch as exc:
        click.echo(str(exc), err=True)
        click.echo(f"ews {service}: the topics do not match; fix them and start again", err=True)
        sys.exit(EXIT_CONFIG)
    if created:
        click.echo(f"created topics: {', '.join(created)}", err=True)

    class Worker(faust.Worker):
        def on_setup_root_logger(self, logger, level: int) -> None:
            super().on_setup_root_logger(logger, level)
            # mode leaves the root logger at DEBUG and filters in the handler: every debug call in
            # aiokafka and faust would still build a record (measured: ~9% of a busy worker).
            logger.setLevel(level)

    # A worker holds many long-lived objects (windows, remembered event_ids) and allocates a few per
    # message: with CPython's default thresholds the cyclic collector ran every 700 allocations and
    # kept re-scanning them. What was built at start-up is frozen out of its reach, and it runs far
    # less often (make bench, pipeline: ~3,400 -> ~4,400-5,300 events/s); the state is acyclic and
    # freed by reference counting, so memory stays where it was.
    gc.freeze()
    gc.set_threshold(100_000, 50, 1000)
    Worker(app, loglevel=settings.log_level, redirect_stdouts=False).execute_from_commandline()


@main.group()
def kafka() -> None:
    """The local Apache Kafka broker (fetched from Maven Central, KRaft mode, loopback)."""


@kafka.command("start")
def kafka_start() -> None:
    """Start the broker in the background and print its bootstrap address."""
    from services.common.local_kafka import MissingTool, start_background

    try:
        bootstrap = start_background()
    except MissingTool as exc:
        click.echo(str(exc), err=True)
        sys.exit(3)
    click.echo(bootstrap)


@kafka.command("stop")
def kafka_stop() -> None:
    """Stop the background broker."""
    from services.common.local_kafka import stop_background

    click.echo("Kafka stopped" if stop_background() else "Kafka was not running")


@main.group()
def rules() -> None:
    """Operator tools for the trigger rules."""


@rules.command("check")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
def rules_check(files: tuple[Path, ...]) -> None:
    """Check triggers, sites, contacts, sharing and tokens files, each alone and against the
    others given (as the workers load them); print every problem as file:line: field: message."""
    from services.common.config_check import check_files

    checked = check_files(list(files), get_settings().allow_private_webhooks)
    for line in checked.ok + checked.notes:
        click.echo(line)
    if checked.problems:
        click.echo("\n".join(checked.problems), err=True)
        click.echo(f"{len(checked.problems)} problem(s)", err=True)
        sys.exit(1)


@main.command()
@click.option(
    "--rules",
    "rules_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="triggers file, e.g. config/triggers.yaml",
)
@click.option(
    "--events",
    "events",
    type=click.Path(exists=True, path_type=Path),
    required=True,
    multiple=True,
    help="JSON lines, CSV or HXL file, or a folder of them (repeatable)",
)
@click.option(
    "--sites",
    "sites_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="sites file (default: next to the rules, else config/sites.yaml)",
)
@click.option(
    "--json", "as_json", is_flag=True, help="print the transitions as JSON instead of a timeline"
)
@click.option(
    "--plot",
    "plot_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="draw each fired scope's series, levels and firing periods to this PNG",
)
def backtest(
    rules_file: Path,
    events: tuple[Path, ...],
    sites_file: Path | None,
    as_json: bool,
    plot_file: Path | None,
) -> None:
    """Run the trigger rules over history: when each trigger would have fired, escalated and
    cleared."""
    import json as jsonlib
    import time
    from datetime import datetime

    from schemas import Scope
    from services.ingest.validation import Limits
    from services.triggers.backtest import Backtest, declared_sources_report
    from services.triggers.backtest_report import plot, timeline
    from services.triggers.core import CompiledRule
    from services.triggers.history import history_files, load_history, size_of
    from services.triggers.loading import load_engine

    settings = get_settings()
    sites = sites_file or (
        rules_file.parent / "sites.yaml"
        if (rules_file.parent / "sites.yaml").exists()
        else settings.sites_file
    )
    try:
        engine = load_engine(rules_file, sites, settings.allowed_lateness)
    except ConfigError as exc:
        click.echo("\n".join(exc.problems), err=True)
        sys.exit(2)
    now = datetime.now(UTC)
    files = history_files(list(events))
    size = sum(map(size_of, files))
    label = f"reading {len(files)} history file{'s' * (len(files) != 1)}"
    with click.progressbar(
        length=size, label=label, file=sys.stderr, hidden=size < 10_000_000
    ) as bar:  # about 30,000 reports: a few seconds
        limits = Limits(settings.max_future, settings.max_period)
        history = load_history(files, engine.geography, now, bar.update, limits)
    for problem in history.problems:
        click.echo(f"skipped {problem}", err=True)
    series: dict = {}
    levels: dict = {}
    if plot_file is not None:

        def record(rule: CompiledRule, scope: Scope, value: float, at: datetime) -> None:
            series.setdefault((rule.id, scope.key), []).append((at, value))
            levels[(rule.id, scope.key)] = rule.levels

        engine.trace = record
    run = Backtest(engine)
    if len(history.observations) >= 100_000:
        click.echo(f"backtesting {len(history.observations):,} observations ...", err=True)
    started = time.perf_counter()
    run.replay(history.observations, now)
    elapsed = time.perf_counter() - started
    if as_json:
        click.echo(
            jsonlib.dumps(
                [a.model_dump(mode="json") for a in run.alerts], indent=2, ensure_ascii=False
            )
        )
    else:
        for line in timeline(run.alerts):
            click.echo(line)
    rate = len(history.observations) / elapsed if elapsed > 0 else float("inf")
    files_read = f"{len(history.files)} file{'s' * (len(history.files) != 1)}"
    versions = [
        f"{n} {what}{'s' * (n != 1)}"
        for n, what in ((history.corrections, "correction"), (history.duplicates, "re-send"))
        if n
    ]
    if history.superseded:
        again = "earlier version" + "s" * (history.superseded != 1)
        versions.append(f"{history.superseded} {again} sent again")
    skipped = f"{len(history.problems)} skipped" + (f"; {', '.join(versions)}" if versions else "")
    click.echo(
        f"{len(history.observations)} observations from {files_read} ({skipped}), "
        f"{len(run.alerts)} transitions in "
        f"{len({a.alert_id for a in run.alerts})} trigger/scope pairs; rules "
        f"{engine.rules.version[:19]}; "
        f"{elapsed:.2f}s ({rate:,.0f} observations/s)",
        err=True,
    )
    uncounted: Counter[tuple[str, str]] = Counter()
    for observation in history.observations:
        for rule_id in engine.too_long_for(observation.feed, observation.period):
            uncounted[(rule_id, observation.period)] += 1
    for (rule_id, period), n in sorted(uncounted.items()):
        window = engine.rules.common(rule_id)
        click.echo(
            f"{n} report{'s' * (n != 1)} of period {period} not counted by {rule_id}: longer than "
            f"its window ({getattr(window, 'window', '?')}); give it a window of at least {period} "
            "or reports of a shorter period",
            err=True,
        )
    for line in declared_sources_report(engine, history.observations):
        click.echo(line, err=True)
    if plot_file is not None:
        written = plot(plot_file, series, run.alerts, levels, engine.geography)
        pairs = len({(a.rule_id, a.scope.key) for a in run.alerts})
        if not written:
            click.echo("nothing fired: no plot written", err=True)
        for page in written:
            click.echo(f"plotted to {page}", err=True)
        if written:
            click.echo(f"plotted all {pairs} trigger/scope pairs that fired", err=True)


@main.group()
def tokens() -> None:
    """API tokens: make one, or hash one for EWS_TOKENS_FILE."""


@tokens.command("new")
@click.argument("name")
@click.option(
    "--role", type=click.Choice(["admin", "operator", "coordinator", "partner"]), required=True
)
@click.option("--country", help="the country it acts for (ISO 3166-1); none: regional")
@click.option("--source", "sources", multiple=True, help="a partner's source (repeat for more)")
def tokens_new(name: str, role: str, country: str | None, sources: tuple[str, ...]) -> None:
    """Make a token for NAME: prints the token (give it to its holder; ews keeps no copy) and the
    line for EWS_TOKENS_FILE, which holds only its SHA-256."""
    import secrets

    import yaml
    from pydantic import ValidationError

    from schemas.config import TokenEntry
    from services.common.auth import token_sha256
    from services.common.config_files import field_messages

    token = secrets.token_urlsafe(32)
    fields: dict = {"name": name, "role": role, "token_sha256": token_sha256(token)}
    if country:
        fields["country"] = country
    if sources:
        fields["sources"] = list(sources)
    try:
        TokenEntry.model_validate(fields)
    except ValidationError as exc:
        for message in field_messages(exc):
            click.echo(message, err=True)
        sys.exit(2)
    click.echo(f"token for {name} (shown once; ews keeps only its digest):\n  {token}")
    click.echo("add to the tokens file (EWS_TOKENS_FILE) under tokens:")
    click.echo(
        "  - "
        + yaml.safe_dump(fields, default_flow_style=True, sort_keys=False, width=1000).strip()
    )


@main.group()
def accounts() -> None:
    """Console accounts: add one to EWS_ACCOUNTS_FILE."""


@accounts.command("add")
@click.argument("username")
@click.option("--name", required=True, help="the person's name, shown on acknowledgements")
@click.option("--role", type=click.Choice(["admin", "operator", "coordinator"]), required=True)
@click.option("--country", help="the country they act for (ISO 3166-1); none: regional")
@click.option("--language", type=click.Choice(["en", "es", "fr", "pt"]), default="en")
@click.option("--contact", "contacts", multiple=True, help="a contact they acknowledge for")
@click.option(
    "--file",
    "file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="the accounts file to add it to (created if missing); without it, the entry is printed",
)
@click.option("--password-stdin", is_flag=True, help="read the password from standard input")
def accounts_add(
    username: str,
    name: str,
    role: str,
    country: str | None,
    language: str,
    contacts: tuple[str, ...],
    file: Path | None,
    password_stdin: bool,
) -> None:
    """Add USERNAME: asks for the password (twice) and keeps only its argon2id hash."""
    import yaml
    from pydantic import ValidationError

    from schemas.config import AccountEntry, AccountsFile
    from services.common.config_files import ConfigError, field_messages, load_model
    from services.notify.console.accounts import hash_password

    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = click.prompt("password", hide_input=True, confirmation_prompt=True)
    if len(password) < 12:
        click.echo("a password has at least 12 characters", err=True)
        sys.exit(2)
    fields: dict = {"username": username, "name": name, "role": role, "language": language}
    if country:
        fields["country"] = country
    if contacts:
        fields["contacts"] = list(contacts)
    fields["password_hash"] = hash_password(password)
    try:
        AccountEntry.model_validate(fields)
    except ValidationError as exc:
        for message in field_messages(exc):
            click.echo(message, err=True)
        sys.exit(2)
    line = (
        "  - "
        + yaml.safe_dump(fields, default_flow_style=True, sort_keys=False, width=1000).strip()
    )
    if file is None:
        click.echo("add to the accounts file (EWS_ACCOUNTS_FILE) under accounts:")
        click.echo(line)
        return
    before = file.read_text(encoding="utf-8") if file.exists() else None
    if before is not None and username in load_model(file, AccountsFile).accounts_by_name:
        click.echo(f"{file}: account {username!r} exists; edit its entry in the file", err=True)
        sys.exit(2)
    text = before if before is not None else "version: 1\naccounts:\n"
    if "accounts: []" in text:
        text = text.replace("accounts: []", "accounts:")
    file.write_text(text.rstrip("\n") + "\n" + line + "\n", encoding="utf-8")
    try:
        load_model(file, AccountsFile)
    except ConfigError as exc:
        if before is None:
            file.unlink()
        else:
            file.write_text(before, encoding="utf-8")
        click.echo(f"{file} left as it was; the entry would not fit it:\n{exc}", err=True)
        sys.exit(2)
    click.echo(f"added {username} ({role}{f' of {country}' if country else ''}) to {file}")


@tokens.command("hash")
def tokens_hash() -> None:
    """Read a token on standard input; print its token_sha256."""
    from services.common.auth import token_sha256

    token = sys.stdin.readline().strip()
    if len(token) < 24:
        click.echo("a token has at least 24 characters", err=True)
        sys.exit(2)
    click.echo(token_sha256(token))


@main.command("ingest")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--feed",
    type=click.Choice(["border-crossings", "displacement"]),
    help="default: guessed from the columns",
)
@click.option("--source", help="source to use for rows without one, e.g. PA-SNM")
@click.option("--check", is_flag=True, help="validate only; send nothing to Kafka")
def ingest_file(file: Path, feed: str | None, source: str | None, check: bool) -> None:
    """Ingest a CSV or HXL-tagged CSV FILE: good rows are published, bad rows reported by row
    number."""
    from services.ingest.file_upload import upload_file

    sys.exit(upload_file(file, feed, source, check, get_settings()))


@main.group()
@click.option(
    "--url", envvar="EWS_NOTIFY_URL", help="notify API (default: this machine's notify worker)"
)
@click.option(
    "--token", envvar="EWS_API_TOKEN", help="an admin or operator bearer token (or EWS_API_TOKEN)"
)
@click.pass_context
def contacts(ctx: click.Context, url: str | None, token: str | None) -> None:
    """Register, list, update, test and remove coordination contacts through the notify API."""
    settings = get_settings()
    ctx.obj = {
        "url": url or f"http://{settings.web_host}:{settings.notify_web_port}",
        "token": token,
    }


def _api(ctx: click.Context, method: str, path: str, **kwargs):
    import httpx

    if not ctx.obj["token"]:
        raise click.UsageError("give --token or set EWS_API_TOKEN to an admin or operator token")
    try:
        response = httpx.request(
            method,
            ctx.obj["url"] + path,
            timeout=30,
            headers={"Authorization": f"Bearer {ctx.obj['token']}"},
            **kwargs,
        )
    except httpx.HTTPError as exc:
        click.echo(f"cannot reach the notify API at {ctx.obj['url']}: {exc}", err=True)
        sys.exit(2)
    if response.status_code >= 400:
        body = (
            response.json()
            if response.headers.get("content-type", "").startswith("application/json")
            else {}
        )
        click.echo(
            f"{method} {path}: {response.status_code} {body.get('error', response.text)}", err=True
        )
        for problem in body.get("errors", []):
            click.echo(f"  {problem['field']}: {problem['message']}", err=True)
        sys.exit(1)
    return response


@contacts.command("list")
@click.pass_context
def contacts_list(ctx: click.Context) -> None:
    """A table of the contacts: id, organisation, language, minimum level, what it receives,
    channels (values whole, never cut)."""
    found = _api(ctx, "GET", "/contacts").json()["contacts"]
    rows = [("ID", "ORGANISATION", "COUNTRY", "LANG", "FROM LEVEL", "RECEIVES", "CHANNELS")]
    for c in found:
        channels = ", ".join(
            f"{ch['type']} {ch.get('url') or ch.get('address')}" for ch in c["channels"]
        )
        receives = ",".join(c["countries"] + c["corridors"] + c["trigger_ids"]) or "all"
        rows.append(
            (
                c["id"],
                c["organisation"],
                c.get("country") or "-",
                c["language"],
                c["min_level"],
                receives,
                channels,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        click.echo(
            "  ".join(v.ljust(w) for v, w in zip(row, widths, strict=False)) + f"  {row[-1]}"
        )
    click.echo(f"{len(found)} contact{'s' * (len(found) != 1)}", err=True)


def _listed(text: str | None) -> list[str] | None:
    return None if text is None else [c.strip() for c in text.split(",") if c.strip()]


@contacts.command("update")
@click.argument("contact_id")
@click.option("--name")
@click.option("--organisation")
@click.option("--country", help="the contact's own country (ISO 3166-1)")
@click.option("--countries", help="countries of interest, comma separated ('' for all)")
@click.option("--corridors", help="corridors of interest, comma separated ('' for none)")
@click.option("--triggers", help="trigger ids, comma separated ('' for all)")
@click.option("--min-level", type=click.Choice(["watch", "warning", "emergency"]))
@click.option("--language", type=click.Choice(["en", "es", "fr", "pt"]))
@click.option("--format", "fmt", type=click.Choice(["json", "cap"]))
@click.pass_context
def contacts_update(
    ctx,
    contact_id,
    name,
    organisation,
    country,
    countries,
    corridors,
    triggers,
    min_level,
    language,
    fmt,
) -> None:
    """Change the fields given of a contact, the others (channels and their secrets included)
    kept."""
    changes = {
        "name": name,
        "organisation": organisation,
        "country": country,
        "countries": _listed(countries),
        "corridors": _listed(corridors),
        "trigger_ids": _listed(triggers),
        "min_level": min_level,
        "language": language,
        "format": fmt,
    }
    changes = {k: v for k, v in changes.items() if v is not None}
    if not changes:
        raise click.UsageError("give at least one field to change, e.g. --min-level warning")
    _api(ctx, "PATCH", f"/contacts/{contact_id}", json=changes)
    click.echo(f"updated {contact_id}: {', '.join(sorted(changes))}")


@contacts.command("test")
@click.argument("contact_id")
@click.pass_context
def contacts_test(ctx: click.Context, contact_id: str) -> None:
    """Send the contact a test message now on each of its channels, and say what each answered
    (exit 1 if any channel failed)."""
    results = _api(ctx, "POST", f"/contacts/{contact_id}/test").json()["results"]
    for r in results:
        outcome = f"delivered ({r['status_code']})" if r["delivered"] else f"failed: {r['detail']}"
        click.echo(f"{r['channel']} {r['target']}: {outcome} in {r['duration_s']:.2f} s")
    if not all(r["delivered"] for r in results):
        sys.exit(1)


@contacts.command("add")
@click.option("--id", "contact_id", required=True)
@click.option("--name", required=True)
@click.option("--organisation", required=True)
@click.option("--country", help="the contact's own country (ISO 3166-1), for the sharing policy")
@click.option("--countries", default="", help="countries of interest, comma separated (empty: all)")
@click.option("--corridors", default="", help="corridors of interest, comma separated")
@click.option("--min-level", type=click.Choice(["watch", "warning", "emergency"]), default="watch")
@click.option("--language", type=click.Choice(["en", "es", "fr", "pt"]), default="en")
@click.option("--format", "fmt", type=click.Choice(["json", "cap"]), default="json")
@click.option("--webhook", help="https URL that receives the alerts")
@click.option(
    "--secret", help="shared secret for the webhook signature (default: generated and printed)"
)
@click.option("--email", help="e-mail address that receives the alerts")
@click.pass_context
def contacts_add(
    ctx,
    contact_id,
    name,
    organisation,
    country,
    countries,
    corridors,
    min_level,
    language,
    fmt,
    webhook,
    secret,
    email,
) -> None:
    """Register a contact."""
    import secrets as secrets_module

    channels = []
    if webhook:
        secret = secret or secrets_module.token_hex(24)
        channels.append({"type": "webhook", "url": webhook, "secret": secret})
    if email:
        channels.append({"type": "email", "address": email})
    body = {
        "id": contact_id,
        "name": name,
        "organisation": organisation,
        "country": country,
        "countries": [c.strip() for c in countries.split(",") if c.strip()],
        "corridors": [c.strip() for c in corridors.split(",") if c.strip()],
        "min_level": min_level,
        "language": language,
        "format": fmt,
        "channels": channels,
    }
    _api(ctx, "POST", "/contacts", json=body)
    click.echo(f"registered {contact_id}")
    if webhook:
        click.echo(f"webhook secret (give it to the receiver; it is not shown again): {secret}")


@contacts.command("remove")
@click.argument("contact_id")
@click.pass_context
def contacts_remove(ctx: click.Context, contact_id: str) -> None:
    """Remove a contact."""
    _api(ctx, "DELETE", f"/contacts/{contact_id}")
    click.echo(f"removed {contact_id}")


@main.group()
def deliveries() -> None:
    """The delivery audit, and deliveries notify gave up on (dead letters): list, replay."""


def _chosen_letters(
    keys: tuple[str, ...], alert_id: str | None, contact_id: str | None, replayed: bool
) -> list:
    import asyncio

    from services.common.topics import Topics
    from services.notify.dead_letters import dead_letters

    settings = get_settings()
    letters = asyncio.run(dead_letters(settings.kafka_bootstrap, Topics(settings.topic_namespace)))
    return [
        letter
        for letter in letters
        if (not keys or letter.job.idempotency_key in keys)
        and (alert_id is None or letter.job.alert.alert_id == alert_id)
        and (contact_id is None or letter.job.contact_id == contact_id)
        and (replayed or letter.replayed_at is None)
    ]


@deliveries.command("list")
@click.option("--alert", "alert_id", help="only this alert_id")
@click.option("--contact", "contact_id", help="only this contact")
@click.option("--country", help="only alerts of this country")
@click.option("--outcome", type=click.Choice(["delivered", "failed", "refused", "dead"]))
@click.option("--since", type=click.DateTime(), help="from this time (UTC)")
@click.option("--until", type=click.DateTime(), help="before this time (UTC)")
def deliveries_list(
    alert_id: str | None,
    contact_id: str | None,
    country: str | None,
    outcome: str | None,
    since,
    until,
) -> None:
    """The delivery audit from ews.deliveries: who received which figure about which alert,
    when, on which channel, with what outcome, and what the message said."""
    from schemas.delivery import DeliveryRecord
    from services.notify.audit import DeliveryQuery, line

    query = DeliveryQuery(
        alert_id=alert_id,
        contact_id=contact_id,
        country=country,
        outcome=outcome,
        since=since.replace(tzinfo=UTC) if since else None,
        until=until.replace(tzinfo=UTC) if until else None,
    )
    topic, records = _records_of(lambda t: t.deliveries, DeliveryRecord)
    shown = 0
    for record in records:
        if query.matches(record):
            click.echo(line(record))
            shown += 1
    click.echo(f"{shown} deliver{'ies' if shown != 1 else 'y'} on {topic}", err=True)


def _records_of(topic_of, model) -> tuple[str, list]:
    """An ews topic's name (in the settings' namespace) and its readable records as `model`; the
    unreadable ones are named on standard error."""
    import asyncio

    from services.common.topics import Topics
    from services.notify.dead_letters import read_all

    settings = get_settings()
    topic = topic_of(Topics(settings.topic_namespace))
    records = []
    for raw in asyncio.run(read_all(settings.kafka_bootstrap, topic)):
        try:
            records.append(model.model_validate_json(raw.value))
        except ValueError as exc:
            click.echo(f"{topic} {raw.partition}/{raw.offset}: unreadable record: {exc}", err=True)
    return topic, records


@main.command("audit")
@click.option("--by", help="only writes by this token name")
@click.option("--action", help="only this action, e.g. silence.create")
@click.option("--country", help="only writes concerning this country")
def audit(by: str | None, action: str | None, country: str | None) -> None:
    """Every API write from ews.audit: when, who (role, country), what, on which object (and a
    test message's outcome per channel)."""
    from schemas.delivery import AuditRecord

    topic, records = _records_of(lambda t: t.audit, AuditRecord)
    shown = 0
    for record in records:
        if (by or record.by) != record.by or (action or record.action) != record.action:
            continue
        if country is not None and record.country != country:
            continue
        who = f"{record.by} ({record.role}{f', {record.by_country}' if record.by_country else ''})"
        detail = f"  {record.detail}" if record.detail else ""
        click.echo(
            f"{record.at:%Y-%m-%d %H:%M:%S}  {who}  {record.action}  {record.target}{detail}"
        )
        shown += 1
    click.echo(f"{shown} write{'s' * (shown != 1)} on {topic}", err=True)


@deliveries.command("dead")
@click.option("--alert", "alert_id", help="only this alert_id")
@click.option("--contact", "contact_id", help="only this contact")
@click.option("--all", "show_all", is_flag=True, help="also those already replayed")
def deliveries_dead(alert_id: str | None, contact_id: str | None, show_all: bool) -> None:
    """List dead letters: when notify gave up, the delivery's key, contact, attempts, last error."""
    letters = _chosen_letters((), alert_id, contact_id, show_all)
    for letter in letters:
        job = letter.job
        replayed = f"  (replayed {letter.replayed_at:%Y-%m-%d %H:%M})" if letter.replayed_at else ""
        click.echo(
            f"{letter.dead_at:%Y-%m-%d %H:%M:%S}  {job.idempotency_key}  contact {job.contact_id} "
            f"channel {job.channel_index}  {job.attempt} attempts  last error: "
            f"{job.last_error or '-'}{replayed}"
        )
    click.echo(f"{len(letters)} dead letter{'s' * (len(letters) != 1)}", err=True)


@deliveries.command("replay")
@click.argument("keys", nargs=-1)
@click.option("--alert", "alert_id", help="every dead letter of this alert_id")
@click.option("--contact", "contact_id", help="every dead letter of this contact")
@click.option("--all", "every", is_flag=True, help="every dead letter not yet replayed")
def deliveries_replay(
    keys: tuple[str, ...], alert_id: str | None, contact_id: str | None, every: bool
) -> None:
    """Send dead letters (by Idempotency-Key, or --alert/--contact/--all) back to notify, with
    their original keys and a fresh count of attempts."""
    import asyncio

    from services.common.topics import Topics
    from services.notify.dead_letters import replay

    if not (keys or alert_id or contact_id or every):
        raise click.UsageError("name the deliveries: their keys, --alert, --contact or --all")
    chosen = _chosen_letters(keys, alert_id, contact_id, False)
    missing = sorted(set(keys) - {letter.job.idempotency_key for letter in chosen})
    for key in missing:
        click.echo(f"no dead letter {key!r} waiting (see `ews deliveries dead --all`)", err=True)
    settings = get_settings()
    asyncio.run(replay(settings.kafka_bootstrap, Topics(settings.topic_namespace), chosen))
    for letter in chosen:
        click.echo(f"replayed {letter.job.idempotency_key} (contact {letter.job.contact_id})")
    click.echo(f"{len(chosen)} replayed", err=True)
    if missing or not chosen:
        sys.exit(1)


@main.group()
def schemas() -> None:
    """JSON Schema files of every message and config file."""


@schemas.command("export")
@click.argument("directory", required=False, type=click.Path(path_type=Path))
def schemas_export(directory: Path | None) -> None:
    """Write the JSON Schema files (default: schemas/json/)."""
    from schemas.export import JSON_DIR, export_schemas

    for path in export_schemas(directory or JSON_DIR):
        click.echo(f"wrote {path}")


@main.command()
@click.option("--keep-kafka", is_flag=True, help="leave the broker the demo started running")
def demo(keep_kafka: bool) -> None:
    """The main job on one machine: Kafka, the three workers, a receiver, the bundled scenario, a
    summary."""
    from services.demo.run import run_demo

    sys.exit(run_demo(keep_kafka=keep_kafka))


if __name__ == "__main__":
    main()
