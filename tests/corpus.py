"""A hostile-input corpus: malformed feed messages of many distinct kinds, each unique bytes.

Used by the ingest tests and (later) the fault-injection scenarios. Every message here must
be rejected with a reason; none may stop a worker.
"""

from __future__ import annotations

import json

from tests.helpers import crossing

BAD_VALUES: dict[str, list] = {
    "event_id": ["", " spaced id ", 123, None, "x" * 300, ["a"], {"a": 1}, "ümlaut-ü"],
    "source": ["", 42, None, ["PA"], "bad source!"],
    "observed_at": [
        "2026-11-20T00:00:00",
        "yesterday",
        12345,
        "2026-13-01T00:00:00Z",
        None,
        "",
        "2026-11-20",
        "2026-02-30T00:00:00Z",
        ["2026"],
        "2026-11-20T25:00:00Z",
        # the ends of the calendar, and a century ahead (issue 19): rejections, never a crash
        "9999-12-31T12:00:00Z",
        "0001-01-01T00:00:00+05:00",
        "9999-12-31T23:59:59-05:00",
        "1899-12-31T00:00:00Z",
        "2126-11-01T00:00:00Z",
    ],
    "period": [
        *("1 day", "P", "-P1D", 5, None, "PT0S", "forever", "P1Q"),
        *("P9999Y", "PT1000000000000H", "P2Y", "P400D", "-9999999999d"),
    ],
    "site_id": ["PA-NOWHERE", 5, "", "pa lajas blancas", "MX-TAPACHULA-X"],
    "from_country": ["XX", "pan", "", 5, "P", "ZZ"],
    "to_country": ["XX", "pan", "", 5, None, "QQ", "Panama"],
    "count": [-1, 1.5, "12", True, None, 10**12, 2**70, "", [1], {"n": 1}, -(10**6)],
    "by_nationality": [
        {"XX": 1},
        {"VE": -1},
        {"VE": 99_999},
        [1, 2],
        "VE",
        {"VE": 1.5},
        {"VE": "10"},
        {"": 1},
    ],
    "children": [-1, 999_999, "x", 2.5, [3]],
    "unaccompanied_children": [-1, 400, "x", 1.5],
}
REQUIRED = ["event_id", "source", "observed_at", "to_country", "count"]
BYTE_LEVEL = [
    b"",
    b"{",
    b"}",
    b"nul\x00l",
    b"\xff\xfe\xfd",
    b"\xc3\x28",
    b'{"count": \xff}',
    b"\xed\xa0\x80",
    b"[]",
    b'"just a string"',
    b"123",
    b"null",
    b"true",
    b'{"a":}',
    b"{'single': 'quotes'}",
    b'{"count": NaN}',
    b'{"count": Infinity}',
    b'{"count": -Infinity}',
    b"[" * 50_000 + b"]" * 50_000,
    b'{"a":' * 20_000 + b"1" + b"}" * 20_000,
    b'\xef\xbb\xbf{"bom": true}',
]


def malformed_border_crossings() -> list[bytes]:
    """Distinct malformed border-crossing messages (well over 200)."""
    out: list[bytes] = []
    base = crossing(3, 1500, children=300, unaccompanied_children=20, by_nationality={"VE": 900})
    for field, values in BAD_VALUES.items():
        for n, value in enumerate(values):
            report = dict(base, event_id=f"bad-{field}-{n}")
            report[field] = value
            out.append(json.dumps(report).encode())
    for field in REQUIRED:
        report = dict(base, event_id=f"missing-{field}")
        del report[field]
        out.append(json.dumps(report).encode())
    for n, extra in enumerate(["surprise", "Count", "site", "feed_version"]):
        out.append(json.dumps(dict(base, event_id=f"extra-{n}", **{extra: 1})).encode())
    valid_bytes = json.dumps(dict(base, event_id="truncated")).encode()
    for cut in range(5, len(valid_bytes) - 1, max(1, len(valid_bytes) // 80)):
        out.append(valid_bytes[:cut])
    out.extend(BYTE_LEVEL)
    out.append(b'{"pad": "' + b"x" * (10 * 1024 * 1024) + b'"}')  # a 10 MB message
    assert len(set(out)) == len(out), "corpus messages must be distinct"
    return out


def valid_border_crossings(n: int) -> list[bytes]:
    sites = [
        ("PA-LAJAS-BLANCAS", "CO", "PA"),
        ("CR-PASO-CANOAS", "PA", "CR"),
        ("MX-TAPACHULA", "GT", "MX"),
    ]
    return [
        json.dumps(
            crossing(i % 30, 100 + i, site=sites[i % 3][0], frm=sites[i % 3][1], to=sites[i % 3][2])
            | {"event_id": f"valid-{i}"}
        ).encode()
        for i in range(n)
    ]


DISPLACEMENT_BAD: dict[str, list] = {
    "area_id": ["HN-XX", "", 5, "GT-20", None],
    "country": ["XX", "HND", 5, None, "GT"],
    "newly_displaced": [-5, 2.5, "450", None, True, 10**13],
    "cause": ["aliens", 5, ""],
    "shelter_occupancy": [-1, "x", 1.5],
    "shelter_capacity": [-1, "x", 0],
    "observed_at": ["2026-11-20T00:00:00", "tomorrow", 1.5],
    "period": ["daily", "P0D"],
}


def malformed_displacement() -> list[bytes]:
    base = {
        "event_id": "hn-base",
        "source": "HN-CONADEH",
        "observed_at": "2026-11-20T00:00:00Z",
        "period": "P1D",
        "area_id": "HN-CR",
        "country": "HN",
        "newly_displaced": 450,
        "cause": "violence",
        "shelter_occupancy": 820,
        "shelter_capacity": 900,
    }
    out = []
    for field, values in DISPLACEMENT_BAD.items():
        for n, value in enumerate(values):
            out.append(
                json.dumps(dict(base, event_id=f"bad-d-{field}-{n}", **{field: value})).encode()
            )
    without_capacity = dict(base, event_id="bad-d-occupancy-alone")
    del without_capacity["shelter_capacity"]
    out.append(json.dumps(without_capacity).encode())
    for field in ("area_id", "country", "newly_displaced", "source"):
        report = dict(base, event_id=f"missing-d-{field}")
        del report[field]
        out.append(json.dumps(report).encode())
    assert len(set(out)) == len(out)
    return out
