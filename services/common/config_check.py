"""The configuration checked as a whole, as the workers load it: each file's own checks, then what
one file says about another's names (a contact's corridor, an override's country). `ews rules
check` and every worker at start use it; problems read `file:line: field: message`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from schemas import ContactsFile, SitesFile, TriggersFile
from schemas.config import AccountsFile, SharingFile, TokensFile
from services.notify.webhook import refused_as_written

from .config_files import ConfigError, at_line, load_checked, load_yaml
from .settings import Settings

# a file's kind by its top-level keys, in this order
KINDS: tuple[tuple[str, tuple[str, ...], type[BaseModel]], ...] = (
    ("triggers", ("triggers",), TriggersFile),
    ("sites", ("sites", "corridors", "areas"), SitesFile),
    ("contacts", ("contacts",), ContactsFile),
    ("tokens", ("tokens",), TokensFile),
    ("accounts", ("accounts",), AccountsFile),
    ("sharing", ("default", "countries"), SharingFile),
)


@dataclass
class Checked:
    """The files that loaded, by kind, with their line maps; and every problem found."""

    loaded: list[tuple[str, Path, Any, dict[tuple, int]]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    ok: list[str] = field(default_factory=list)  # "file: ok (Model)"
    notes: list[str] = field(default_factory=list)  # worth knowing, not wrong

    def load(self, path: Path, kind: str | None = None) -> None:
        try:
            if kind is None:
                kind = kind_of(path)
            model = next(m for k, _, m in KINDS if k == kind)
            loaded, lines, problems = load_checked(path, model)
        except ConfigError as error:
            self.problems.extend(error.problems)
            return
        self.loaded.append((kind, path, loaded, lines))  # cross-checked with the others still
        self.problems.extend(problems)
        if not problems:
            self.ok.append(f"{path}: ok ({model.__name__})")

    def first(self, kind: str) -> tuple[Path, Any, dict[tuple, int]] | None:
        return next(((p, m, lines) for k, p, m, lines in self.loaded if k == kind), None)

    def cross_check(self, allow_private_webhooks: bool) -> None:
        sites = self.first("sites")
        triggers = self.first("triggers")
        if sites and triggers:
            path, rules, lines = triggers
            countries = sites[1].countries
            silent = {t.feed for t in rules.triggers if t.kind == "silence" and t.scope == "source"}
            for i, declared in enumerate(sites[1].sources):
                for j, feed in enumerate(declared.feeds):
                    if feed not in silent:
                        self.notes.append(
                            at_line(
                                sites[0],
                                sites[2],
                                ("sources", i, "feeds", j),
                                f"note: source {declared.id}: no silence trigger in {path} reads "
                                f"{feed} at scope source, so its {feed} reports are not watched "
                                "for silence",
                            )
                        )
            for country in rules.overrides:
                if country not in countries:
                    self.problems.append(
                        at_line(
                            path,
                            lines,
                            ("overrides", country),
                            f"{country} has no sites or areas in {sites[0]}: is the country "
                            "code right?",
                        )
                    )
        accounts, contacts = self.first("accounts"), self.first("contacts")
        if accounts and contacts:
            path, people, lines = accounts
            contact_of = {c.id: c for c in contacts[1].contacts}
            for i, person in enumerate(people.accounts):
                for j, contact_id in enumerate(person.contacts):
                    found = contact_of.get(contact_id)
                    where = ("accounts", i, "contacts", j)
                    if found is None:  # it may be one created through the API
                        message = (
                            f"note: account {person.username}: contact {contact_id!r} is not in "
                            f"{contacts[0]}; it acknowledges for it once the API has it"
                        )
                        self.notes.append(at_line(path, lines, where, message))
                    elif person.country is not None and found.country != person.country:
                        self.problems.append(
                            at_line(
                                path,
                                lines,
                                where,
                                f"account {person.username} acts for {person.country}; contact "
                                f"{contact_id} is of {found.country or 'no country'}",
                            )
                        )
        sharing = self.first("sharing")
        if sites and sharing:
            self._note_withheld_corridors(sites[0], sites[1], *sharing)
        for kind, path, book, lines in self.loaded:
            if kind != "contacts":
                continue
            # what a contact may name, and the file that defines it
            named = []
            if sites:
                named.append(
                    ("corridors", "corridor", {c.id for c in sites[1].corridors}, sites[0])
                )
            if triggers:
                named.append(
                    ("trigger_ids", "trigger", {t.id for t in triggers[1].triggers}, triggers[0])
                )
            for i, contact in enumerate(book.contacts):
                for field_name, what, known, source in named:
                    for j, name in enumerate(getattr(contact, field_name)):
                        if name not in known:
                            self.problems.append(
                                at_line(
                                    path,
                                    lines,
                                    ("contacts", i, field_name, j),
                                    f"contact {contact.id}: no {what} {name!r} in {source}",
                                )
                            )
                for k, channel in enumerate(contact.channels):
                    url = getattr(channel, "url", None)
                    if url is None:
                        continue
                    refused = refused_as_written(str(url), allow_private_webhooks)
                    if refused is not None:
                        self.problems.append(
                            at_line(
                                path,
                                lines,
                                ("contacts", i, "channels", k, "url"),
                                f"contact {contact.id}: {refused}",
                            )
                        )

    def _note_withheld_corridors(self, sites_path: Path, sites, path: Path, policy, lines) -> None:
        """A country that shares nothing keeps corridor and region alerts that cover it from
        every reader outside it: worth knowing when writing either file."""
        countries_of = {
            c.id: {s.country for s in sites.sites if s.id in c.sites} for c in sites.corridors
        }
        for country, rule in policy.countries.items():
            if rule.outside != "nothing":
                continue
            through = sorted(c for c, members in countries_of.items() if country in members)
            self.notes.append(
                at_line(
                    path,
                    lines,
                    ("countries", country),
                    f"note: {country} shares nothing, so alerts of the region"
                    + (
                        f" and of corridor{'s' * (len(through) > 1)} {', '.join(through)}"
                        if through
                        else ""
                    )
                    + f" ({sites_path}) reach only {country}'s readers; define a corridor without "
                    f"{country} to share it",
                )
            )


def kind_of(path: Path) -> str:
    data, _ = load_yaml(path)
    keys = set(data) if isinstance(data, dict) else set()
    for kind, markers, _ in KINDS:
        if keys & set(markers):
            return kind
    raise ConfigError(
        [
            f"{path}:1: (file): not a triggers, sites, contacts, tokens, accounts or sharing file "
            "(expected a top-level 'triggers:', 'sites:', 'contacts:', 'tokens:', 'accounts:' or "
            "'countries:' key)"
        ]
    )


def check_files(paths: list[Path], allow_private_webhooks: bool = False) -> Checked:
    """`ews rules check`: every file given, each problem once."""
    checked = Checked()
    for path in paths:
        checked.load(path)
    checked.cross_check(allow_private_webhooks)
    return checked


# what each worker reads at start
WORKER_FILES = {
    "ingest": ("sites", "triggers", "tokens"),
    "triggers": ("sites", "triggers"),
    "notify": ("sites", "triggers", "contacts", "sharing", "tokens", "accounts"),
}


def check_worker(settings: Settings, service: str) -> list[str]:
    """The problems of the files this worker reads (those that are optional only if present)."""
    files: dict[str, Path | None] = {
        "sites": settings.sites_file,
        "triggers": settings.triggers_file,
        "contacts": settings.resolved_contacts_file,
        "sharing": settings.resolved_sharing_file,
        "tokens": settings.tokens_file,
        "accounts": settings.accounts_file,
    }
    optional = {"contacts", "sharing", "tokens"}
    checked = Checked()
    for kind in WORKER_FILES[service]:
        path = files[kind]
        if path is None or (kind in optional and not path.exists()):
            continue
        checked.load(path, kind)
    checked.cross_check(settings.allow_private_webhooks)
    return checked.problems
