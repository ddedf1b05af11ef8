"""CSV and HXL files: columns and hashtags map to fields; bad rows are named by their row number."""

import json

from click.testing import CliRunner

from services.cli import main
from services.common.settings import PROJECT_ROOT
from services.ingest.files import read_feed_rows

HXL = (
    "Date,Source,Crossing point,Origin,Destination,People,Children,Unaccompanied\n"
    "#date,#meta+source,#loc+code,#country+origin+code,#country+code+dest,#affected,#affected+children,#affected+unaccompanied+children\n"
    '2026-11-20,PA-SNM,PA-LAJAS-BLANCAS,CO,PA,"1,520",310,12\n'
    "2026-11-21,PA-SNM,PA-LAJAS-BLANCAS,CO,PA,-4,310,12\n"
    "\n"
    "2026-11-22,PA-SNM,PA-NOWHERE,CO,PA,100,,\n"
)


def test_hxl_tags_map_to_fields_in_any_attribute_order(tmp_path):
    path = tmp_path / "crossings.csv"
    path.write_text(HXL)
    feed, rows = read_feed_rows(path)
    first = next(rows)
    assert feed == "border-crossings" and first.number == 3
    assert first.report == {
        "observed_at": "2026-11-20T00:00:00Z",
        "source": "PA-SNM",
        "site_id": "PA-LAJAS-BLANCAS",
        "from_country": "CO",
        "to_country": "PA",
        "count": 1520,
        "children": 310,
        "unaccompanied_children": 12,
        "event_id": "pa-snm-2026-11-20-pa-lajas-blancas-co-pa",
    }


def test_hxl_displacement_with_idps_and_months(tmp_path):
    path = tmp_path / "idps.csv"
    path.write_text(
        "#date,#adm1+code,#country+code,#affected+idps,#cause\n2026-10,HN-CR,HN,450,violence\n"
    )
    feed, rows = read_feed_rows(path, source="HN-CONADEH")
    [row] = list(rows)
    assert feed == "displacement"
    assert row.report == {
        "observed_at": "2026-10-01T00:00:00Z",
        "area_id": "HN-CR",
        "country": "HN",
        "newly_displaced": 450,
        "cause": "violence",
        "source": "HN-CONADEH",
        "period": "P1M",
        "event_id": "hn-conadeh-2026-10-01-hn-cr-hn-violence-p1m",
    }


def test_plain_csv_with_field_names_and_nationality_columns(tmp_path):
    path = tmp_path / "plain.csv"
    path.write_text(
        "event_id,source,observed_at,site_id,from_country,to_country,count,nationality_VE\n"
        "e-1,PA-SNM,2026-11-20T00:00:00-05:00,PA-LAJAS-BLANCAS,CO,PA,100,60\n"
    )
    _, rows = read_feed_rows(path)
    assert next(rows).report["by_nationality"] == {"VE": 60}


def test_check_reports_bad_rows_by_number_and_still_counts_good_ones(tmp_path):
    path = tmp_path / "crossings.csv"
    path.write_text(HXL)
    result = CliRunner().invoke(main, ["ingest", "--check", str(path)])
    assert result.exit_code == 1
    assert f"{path}:4: count: Input should be greater than or equal to 0 (got -4)" in result.output
    assert f"{path}:6: site_id: 'PA-NOWHERE' is not a site in config/sites.yaml" in result.output
    assert "3 rows, 1 valid, 2 rejected" in result.output


def test_a_file_without_usable_columns_is_refused_naming_it(tmp_path):
    path = tmp_path / "nothing.csv"
    path.write_text("#foo,#bar\n1,2\n")
    result = CliRunner().invoke(main, ["ingest", "--check", str(path)])
    assert result.exit_code == 2
    assert result.output.startswith(
        f"{path}: no column maps to a report field"
    )  # the file named once


def test_a_field_too_long_for_csv_is_refused_naming_the_line(tmp_path):
    path = tmp_path / "huge.csv"
    path.write_text(
        "event_id,site_id,observed_at,count\n" + "x" * 200_000 + ",PA-LAJAS-BLANCAS,2026-01-01,5\n"
    )
    result = CliRunner().invoke(main, ["ingest", "--check", str(path)])
    assert result.exit_code == 2, result.output
    assert f"{path}:2: not readable as CSV: field larger than field limit" in result.output


def test_the_hxl_copy_of_the_honduras_series_matches_the_published_csv():
    import csv
    import json

    from services.demo.scenario import HONDURAS_ARRIVALS, load_honduras_arrivals

    published = {
        row["period"]: int(row["value"]) for row in csv.DictReader(HONDURAS_ARRIVALS.open())
    }
    replayed = {
        json.loads(m.value)["observed_at"][:7]: json.loads(m.value)["count"]
        for m in load_honduras_arrivals()
    }
    assert replayed == published and len(published) == 136


def test_check_names_the_row_of_a_date_out_of_range_and_goes_on(tmp_path):
    path = tmp_path / "crossings.csv"
    path.write_text(
        "event_id,source,observed_at,site_id,from_country,to_country,count\n"
        "e-1,PA-SNM,9999-12-31T12:00:00Z,PA-LAJAS-BLANCAS,CO,PA,10\n"
        "e-2,PA-SNM,2026-11-20T00:00:00Z,PA-LAJAS-BLANCAS,CO,PA,10\n"
        "e-3,PA-SNM,2126-11-01T00:00:00Z,PA-LAJAS-BLANCAS,CO,PA,10\n"
    )
    result = CliRunner().invoke(main, ["ingest", "--check", str(path)])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert f"{path}:2: observed_at: 9999-12-31T12:00:00+00:00 is outside" in result.output
    assert f"{path}:4: observed_at: the period ends 2126-11-02" in result.output
    assert "3 rows, 1 valid, 2 rejected" in result.output


def test_generated_ids_tell_apart_rows_that_differ_in_any_identifying_column(tmp_path):
    """A file without an id column: two origins at one site on one day are two reports (they used
    to replace each other as corrections); the same file sent again gives the same ids."""
    path = tmp_path / "by-origin.csv"
    path.write_text(
        "#date,#meta+source,#loc+code,#country+code+origin,#country+code+dest,#affected\n"
        "2026-11-20,PA-SNM,PA-LAJAS-BLANCAS,CO,PA,900\n"
        "2026-11-20,PA-SNM,PA-LAJAS-BLANCAS,EC,PA,300\n"
        "2026-11-20T12:00:00-05:00,PA-SNM,PA-LAJAS-BLANCAS,CO,PA,40\n"
    )
    ids = [row.report["event_id"] for row in read_feed_rows(path)[1]]
    assert len(set(ids)) == 3, ids
    assert ids == [row.report["event_id"] for row in read_feed_rows(path)[1]]
    assert ids[2] == "pa-snm-2026-11-20t12:00:00-05:00-pa-lajas-blancas-co-pa"


def test_an_hxl_nationality_breakdown_feeds_the_new_nationality_trigger(tmp_path):
    """HXL files carry the breakdown as `#affected+nationality_ve` or `#affected+nationality+ve`:
    100 days of Venezuelans at Lajas Blancas, then 60 Afghans - the shipped new-nationality rule
    fires from the file alone."""
    from datetime import date, timedelta

    lines = [
        "Date,Source,Crossing point,Destination,People,Venezuela,Afghanistan",
        "#date,#meta+source,#loc+code,#country+code+dest,#affected,"
        "#affected+nationality_ve,#affected+af+nationality",
    ]
    start = date(2026, 7, 1)
    for day in range(100):
        lines.append(f"{start + timedelta(days=day)},PA-SNM,PA-LAJAS-BLANCAS,PA,300,300,")
    lines.append(f"{start + timedelta(days=100)},PA-SNM,PA-LAJAS-BLANCAS,PA,360,300,60")
    path = tmp_path / "crossings.hxl.csv"
    path.write_text("\n".join(lines) + "\n")
    _, rows = read_feed_rows(path)
    assert list(rows)[-1].report["by_nationality"] == {"VE": 300, "AF": 60}
    rules = PROJECT_ROOT / "config" / "triggers.yaml"
    result = CliRunner().invoke(
        main, ["backtest", "--rules", str(rules), "--events", str(path), "--json"]
    )
    assert result.exit_code == 0, result.output

    new = [a for a in json.loads(result.stdout) if a["rule_id"] == "new-nationality"]
    assert [(a["status"], a["level"], a["value"]) for a in new][:1] == [("firing", "watch", 60.0)]
