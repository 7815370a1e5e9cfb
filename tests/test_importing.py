"""Generic import path: CSV / TSV / JSONL / Parquet, column detection and mapping, ids as text,
timestamps, every bad-input error (file, line, field), unknown items, all-or-nothing writes,
preview and validate, and the real Beauty / UCI files through the generic path."""

from __future__ import annotations

import gzip
import json

import pandas as pd
import pytest

from semid_studio.core.errors import InputError, ProjectError, UnknownItemsError
from semid_studio.core.events import CancelToken, Cancelled, Message, Progress, collect, drive
from semid_studio.core.importing import import_data, preview, validate
from semid_studio.core.importing.values import parse_timestamps
from semid_studio.core.store import ProjectStore

from conftest import shared_dataset

ITEMS_CSV = (
    "item_id,title,brand,price,colors\n"
    "0123,Rose face cream,Glow,12.5,\"[\"\"red\"\", \"\"pink\"\"]\"\n"
    "7806397051,Makeup palette,COKA,5.04,[]\n"
    "B00X,\"Shampoo, 2 pack\",,7,\"[\"\"clear\"\"]\"\n"
)
INTERACTIONS_CSV = (
    "user_id,item_id,timestamp,rating\n"
    "u1,0123,2011-10-18,5\n"
    "u1,7806397051,2011-10-19 08:26:00,4\n"
    "u2,B00X,1318896000,\n"
)


def write(path, text, encoding="utf-8"):
    path.write_bytes(text.encode(encoding))
    return path


@pytest.fixture
def store(tmp_path):
    s = ProjectStore.create(tmp_path / "p.semid")
    yield s
    s.close()


def run(store, **kwargs):
    return collect(import_data(store, **kwargs))


def located(err: InputError, path, line, field):
    """The error names the file, the line and the field, as attributes and in its one line."""
    assert err.file == str(path)
    assert err.line == line
    assert err.field == field
    text = str(err)
    assert f"{path}:{line}" in text and f"field '{field}'" in text
    assert "\n" not in text


def counts(store):
    return store.item_count(), store.interaction_count(), store.query_count()


# --------------------------------------------------------------------------- happy paths


def test_csv_items_interactions_queries(store, tmp_path):
    items = write(tmp_path / "items.csv", ITEMS_CSV)
    inter = write(tmp_path / "inter.csv", INTERACTIONS_CSV)
    queries = write(tmp_path / "queries.csv", "query,item_id,split\nface cream for dry skin,0123,test\n"
                                              "eyeshadow palette,7806397051,\ncheap shampoo,B00X,valid\n")
    report, events = run(store, items=items, interactions=inter, queries=queries)
    assert (report.items_added, report.interactions_added, report.queries_added, report.users) == (3, 3, 3, 2)
    assert report.totals == {"items": 3, "interactions": 3, "users": 2, "queries": 3}
    assert any(isinstance(e, Progress) and e.stage == "writing interactions" for e in events)
    frame = store.items_frame()
    assert list(frame["item_id"]) == ["0123", "7806397051", "B00X"]  # ids stay text
    first = store.get_items([0])[0]
    assert first["title"] == "Rose face cream" and first["price"] == 12.5 and first["colors"] == ["red", "pink"]
    third = store.get_items([2])[0]
    assert third["title"] == "Shampoo, 2 pack" and third["brand"] is None and third["price"] == 7.0
    inter_frame = store.interactions_frame()
    assert inter_frame["ts"].tolist() == [1318896000.0, 1319012760.0, 1318896000.0]
    q = store.queries_frame()
    assert q["split"].tolist() == ["test", "train", "validation"]
    assert q["item_idx"].tolist() == [0, 1, 2]
    assert "imported" in report.summary() and report.as_dict()["files"][0]["mapping"]["item_id"] == "item_id"


def test_ids_are_always_text(store, tmp_path):
    # a CSV integer column written as floats because of empty cells (UCI's CustomerID)
    items = write(tmp_path / "items.csv", "sku,name\n007,Agent kit\n17850,Lamp\n")
    inter = write(tmp_path / "inter.csv", "CustomerID,StockCode,InvoiceDate\n17850.0,007,2010-12-01 08:26:00\n"
                                          "13047.0,17850,2010-12-01 08:34:00\n")
    report, events = run(store, items=items, interactions=inter)
    assert list(store.item_ids()) == ["007", "17850"]
    assert sorted(u for u, _ in store.users()) == ["13047", "17850"]
    assert any("17850.0" in e.text for e in events if isinstance(e, Message))
    # JSON numbers: ints and integral floats become integer text
    more = write(tmp_path / "more.jsonl", '{"item_id": 42, "title": "x"}\n{"item_id": 43.0, "title": "y"}\n'
                                          '{"item_id": "0044", "title": "z"}\n')
    run(store, items=more)
    assert list(store.item_ids())[2:] == ["42", "43", "0044"]


def test_mixed_ids_column_is_not_rewritten(store, tmp_path):
    items = write(tmp_path / "items.csv", "item_id,title\n1.0,a\nabc,b\n")
    run(store, items=items)
    assert list(store.item_ids()) == ["1.0", "abc"]


@pytest.mark.parametrize("value, expected", [
    ("1318896000", 1318896000.0),  # unix seconds
    ("1318896000123", 1318896000.123),  # unix milliseconds
    (1318896000123, 1318896000.123),
    ("1318896000.5", 1318896000.5),
    ("2011-10-18", 1318896000.0),
    ("2010-12-01 08:26:00", 1291191960.0),
    ("2010-12-01T08:26:00Z", 1291191960.0),
    ("2010-12-01T09:26:00+01:00", 1291191960.0),
    ("12/1/2010 8:26", 1291191960.0),  # the original UCI format
    ("01-Jan-1995", 788918400.0),  # MovieLens 100k release dates
    ("09 1, 2013", 1377993600.0),  # Amazon reviewTime
])
def test_timestamp_forms(value, expected):
    secs, bad, _units = parse_timestamps(pd.Series([value], dtype=object))
    assert not bad[0]
    assert secs[0] == pytest.approx(expected)


def test_timestamps_mixed_in_one_column():
    values = pd.Series(["2010-12-01 08:26:00", "1291191960", "12/1/2010 8:26", "", "soon"], dtype=object)
    secs, bad, units = parse_timestamps(values)
    assert secs[:3].tolist() == [1291191960.0] * 3
    assert bad.tolist() == [False, False, False, True, True]
    assert {"seconds", "date"} <= units


def test_jsonl_gz_tsv_and_json_array(store, tmp_path):
    items = tmp_path / "items.jsonl.gz"
    with gzip.open(items, "wt", encoding="utf-8") as fh:
        fh.write(json.dumps({"asin": "A1", "title": "One", "categories": ["X", "Y"]}) + "\n\n")
        fh.write(json.dumps({"asin": "A2", "title": "Two", "categories": ["X"], "extra": {"k": 1}}) + "\n")
    inter = write(tmp_path / "inter.tsv", "reviewerID\tasin\tunixReviewTime\nr1\tA1\t1318896000\nr1\tA2\t1318982400\n")
    queries = write(tmp_path / "q.json", json.dumps([{"q": "first", "asin": "A1"}, {"q": "second", "asin": "A2"}]))
    report, _ = run(store, items=items, interactions=inter, queries=queries)
    assert (report.items_added, report.interactions_added, report.queries_added) == (2, 2, 2)
    second = store.get_items([1])[0]
    assert second["categories"] == ["X"] and second["extra"] == {"k": 1}
    assert store.get_items([0])[0]["extra"] is None
    assert [f.reader for f in report.files] == ["jsonl", "tsv", "json"]


def test_parquet_items_and_interactions(store, tmp_path):
    items = pd.DataFrame({"product_id": [10, 20, 30], "product_title": ["a", "b", "c"],
                          "tags": [["x"], [], ["y", "z"]], "price": [1.5, None, 3.0]})
    items.to_parquet(tmp_path / "items.parquet")
    inter = pd.DataFrame({"customer_id": ["c1", "c1", "c2"], "product_id": [10, 30, 20],
                          "event_time": pd.to_datetime(["2010-12-01 08:26", "2010-12-02", "2011-01-01"], format="ISO8601")})
    inter.to_parquet(tmp_path / "inter.parquet")
    report, _ = run(store, items=tmp_path / "items.parquet", interactions=tmp_path / "inter.parquet")
    assert list(store.item_ids()) == ["10", "20", "30"]
    item = store.get_items([2])[0]
    assert item["title"] == "c" and item["tags"] == ["y", "z"] and item["price"] == 3.0
    assert store.get_items([1])[0]["price"] is None
    assert sorted(store.interactions_frame()["ts"].tolist()) == [1291191960.0, 1291248000.0, 1293840000.0]
    assert report.files[0].reader == "parquet"


def test_appending_items_and_linking_old_and_new(store, tmp_path):
    run(store, items=write(tmp_path / "a.csv", "item_id,title\ni1,One\ni2,Two\n"))
    more = write(tmp_path / "b.csv", "item_id,title\ni3,Three\n")
    inter = write(tmp_path / "inter.csv", "user,item,time\nu,i1,1\nu,i3,2\n")
    report, _ = run(store, items=more, interactions=inter)
    assert report.items_added == 1 and store.user_history("u") == [0, 2]


# --------------------------------------------------------------------------- mapping


def test_flat_mapping_is_routed_by_kind_and_column(store, tmp_path):
    items = write(tmp_path / "products.csv", "sku,name,Manufacturer\nS1,Lamp,Acme\nS2,Desk,Acme\n")
    inter = write(tmp_path / "orders.csv", "customer,product,when\nc1,S1,2020-01-01\nc1,S2,2020-01-02\n")
    mapping = {"item_id": "sku", "title": "name", "brand": "Manufacturer", "interactions.item_id": "product",
               "user": "customer", "time": "when"}
    report, _ = run(store, items=items, interactions=inter, mapping=mapping)
    assert report.files[0].mapping == {"item_id": "sku", "title": "name"}
    assert report.files[1].mapping == {"user_id": "customer", "item_id": "product", "timestamp": "when"}
    assert store.get_items([0])[0]["brand"] == "Acme"  # renamed attribute
    assert store.user_history("c1") == [0, 1]


def test_per_kind_mapping_and_detection_is_case_insensitive(store, tmp_path):
    items = write(tmp_path / "items.csv", "Item ID,Product Title\nA,Alpha\n")
    inter = write(tmp_path / "inter.csv", "who,what,TIMESTAMP\nu,A,5\n")
    run(store, items=items, interactions=inter, mapping={"interactions": {"user_id": "who", "item_id": "what"}})
    assert store.get_items([0])[0]["title"] == "Alpha" and store.user_history("u") == [0]


def test_missing_column_names_the_closest(store, tmp_path):
    items = write(tmp_path / "items.csv", "itm_id,title\nA,Alpha\n")
    with pytest.raises(InputError) as info:
        run(store, items=items)
    located(info.value, items, 1, "item_id")
    assert "'itm_id', 'title'" in str(info.value) and "closest: 'itm_id'" in str(info.value)
    assert "--map item_id=itm_id" in str(info.value)


def test_mapped_column_absent_suggests_a_name(store, tmp_path):
    items = write(tmp_path / "items.csv", "sku,name\nA,Alpha\n")
    with pytest.raises(InputError) as info:
        run(store, items=items, mapping={"item_id": "skuu"})
    located(info.value, items, 1, "skuu")
    assert "did you mean 'sku'" in str(info.value)


def test_interactions_without_a_timestamp_column(store, tmp_path):
    items = write(tmp_path / "items.csv", "item_id,title\nA,Alpha\n")
    inter = write(tmp_path / "inter.csv", "user_id,item_id,tme\nu,A,1\n")
    with pytest.raises(InputError) as info:
        run(store, items=items, interactions=inter)
    located(info.value, inter, 1, "timestamp")
    assert "closest: 'tme'" in str(info.value)
    assert store.item_count() == 0


def test_ambiguous_or_unknown_mapping_keys(store, tmp_path):
    items = write(tmp_path / "items.csv", "item_id,title\nA,Alpha\n")
    inter = write(tmp_path / "inter.csv", "user_id,item_id,ts\nu,A,1\n")
    with pytest.raises(InputError, match="none of the items, interactions files has a column 'nope'"):
        run(store, items=items, interactions=inter, mapping={"item_id": "nope"})
    with pytest.raises(InputError, match="is for interactions or queries, but no such file"):
        run(store, items=items, mapping={"user_id": "u"})


# --------------------------------------------------------------------------- bad input


def test_duplicate_item_ids_name_both_lines(store, tmp_path):
    items = write(tmp_path / "items.csv", "item_id,title\nA,Alpha\nB,Beta\nA,Again\n")
    with pytest.raises(InputError) as info:
        run(store, items=items)
    located(info.value, items, 4, "item_id")
    assert "duplicate item id 'A' (first on line 2)" in str(info.value)


def test_duplicate_of_an_item_already_in_the_project(store, tmp_path):
    run(store, items=write(tmp_path / "a.csv", "item_id,title\nA,Alpha\n"))
    again = write(tmp_path / "b.csv", "item_id,title\nZ,Zeta\nA,Alpha again\n")
    with pytest.raises(InputError) as info:
        run(store, items=again)
    located(info.value, again, 3, "item_id")
    assert "'A' is already in the project" in str(info.value)
    assert store.item_count() == 1


def test_unknown_items_abort_with_counts_or_skip(store, tmp_path):
    items = write(tmp_path / "items.csv", "item_id,title\nA,Alpha\nB,Beta\n")
    inter = write(tmp_path / "inter.csv", "user_id,item_id,timestamp\nu1,A,1\nu1,X,2\nu2,Y,3\nu2,X,4\nu2,B,5\n")
    with pytest.raises(UnknownItemsError) as info:
        run(store, items=items, interactions=inter)
    err = info.value
    assert (err.n_rows, err.n_unknown_rows, err.n_unknown_ids, err.examples) == (5, 3, 2, ["X", "Y"])
    located(err, inter, 3, "item_id")
    assert "3 of 5 rows reference 2 item ids" in str(err)
    assert counts(store) == (0, 0, 0)  # the valid items of the same call were not written either

    report, events = run(store, items=items, interactions=inter, on_unknown="skip")
    assert report.interactions_added == 2 and report.skipped == {"interactions": 3}
    assert report.files[1].skipped == {"unknown item": 3}
    assert any(e.level == "warning" and "skipped 3 rows" in e.text for e in events if isinstance(e, Message))


def test_unknown_items_in_queries(store, tmp_path):
    run(store, items=write(tmp_path / "items.csv", "item_id,title\nA,Alpha\n"))
    queries = write(tmp_path / "q.jsonl", '{"query": "alpha", "item_id": "A"}\n{"query": "zed", "item_id": "Z"}\n')
    with pytest.raises(UnknownItemsError) as info:
        run(store, queries=queries)
    located(info.value, queries, 2, "item_id")
    report, _ = run(store, queries=queries, on_unknown="skip")
    assert report.queries_added == 1 and store.query_count() == 1


def test_unparsable_timestamp_names_line_field_and_value(store, tmp_path):
    items = write(tmp_path / "items.csv", "item_id,title\nA,Alpha\n")
    inter = write(tmp_path / "inter.csv", "user_id,item_id,InvoiceDate\nu,A,2010-12-01\nu,A,next tuesday\n"
                                          "u,A,\n")
    with pytest.raises(InputError) as info:
        run(store, items=items, interactions=inter)
    located(info.value, inter, 3, "InvoiceDate")
    assert "cannot read timestamp 'next tuesday' (2 rows like this)" in str(info.value)
    assert counts(store) == (0, 0, 0)  # nothing half-imported: the valid items are not there


def test_bad_rating_and_bad_split(store, tmp_path):
    items = write(tmp_path / "items.csv", "item_id,title\nA,Alpha\n")
    inter = write(tmp_path / "inter.csv", "user_id,item_id,timestamp,rating\nu,A,1,5\nu,A,2,five\n")
    with pytest.raises(InputError) as info:
        run(store, items=items, interactions=inter)
    located(info.value, inter, 3, "rating")
    queries = write(tmp_path / "q.csv", "query,item_id,split\nalpha,A,train\nalpha,A,holdout\n")
    with pytest.raises(InputError) as info:
        run(store, items=items, queries=queries)
    located(info.value, queries, 3, "split")
    assert "unknown split 'holdout'" in str(info.value)


def test_rows_without_user_abort_or_skip(store, tmp_path):
    items = write(tmp_path / "items.csv", "item_id,title\nA,Alpha\n")
    inter = write(tmp_path / "inter.csv", "CustomerID,StockCode,InvoiceDate\n1.0,A,1\n,A,2\n,A,3\n")
    with pytest.raises(InputError) as info:
        run(store, items=items, interactions=inter)
    located(info.value, inter, 3, "CustomerID")
    assert "empty user id (2 rows like this)" in str(info.value)
    report, _ = run(store, items=items, interactions=inter, on_unknown="skip")
    assert report.interactions_added == 1 and report.files[1].skipped == {"no user id": 2}


@pytest.mark.parametrize("content, line, message", [
    (b"", 1, "the file is empty"),
    (b"\n\n  \n", 1, "the file is empty"),
    (b"item_id,title\n", 1, "header but no data rows"),
    (b"\nitem_id,title\n\n", 2, "header but no data rows"),
])
def test_empty_files(store, tmp_path, content, line, message):
    path = tmp_path / "items.csv"
    path.write_bytes(content)
    with pytest.raises(InputError, match=message) as info:
        run(store, items=path)
    assert info.value.file == str(path) and info.value.line == line


def test_empty_jsonl_and_missing_file(store, tmp_path):
    path = write(tmp_path / "items.jsonl", "\n\n")
    with pytest.raises(InputError, match="the file is empty"):
        run(store, items=path)
    with pytest.raises(InputError, match="no such file") as info:
        run(store, items=tmp_path / "nope.csv")
    assert info.value.file == str(tmp_path / "nope.csv")


def test_wrong_encoding_names_line_and_suggests_option(store, tmp_path):
    items = write(tmp_path / "items.csv", "item_id,title\n1,Toy Story\n2,Les Misérables\n", encoding="latin-1")
    with pytest.raises(InputError) as info:
        run(store, items=items)
    assert info.value.file == str(items) and info.value.line == 3
    assert "not valid utf-8" in str(info.value) and "--encoding latin-1" in str(info.value)
    run(store, items=items, encoding="latin-1")
    assert store.get_items([1])[0]["title"] == "Les Misérables"


def test_bad_json_line(store, tmp_path):
    items = write(tmp_path / "items.jsonl", '{"item_id": "a"}\n{"item_id": "b",}\n')
    with pytest.raises(InputError, match="not valid JSON") as info:
        run(store, items=items)
    assert info.value.line == 2 and info.value.file == str(items)
    meta = write(tmp_path / "meta.jsonl", "{'asin': 'x', 'title': 'y'}\n")
    with pytest.raises(InputError, match="not valid JSON.*amazon format"):
        run(store, items=meta, format="jsonl")


def test_ragged_row_and_unterminated_quote(store, tmp_path):
    items = write(tmp_path / "items.csv", "item_id,title\nA,Alpha\n\nB,Beta,extra\n")
    with pytest.raises(InputError, match="3 fields but the header has 2") as info:
        run(store, items=items)
    assert info.value.line == 4
    quoted = write(tmp_path / "q.csv", 'item_id,title\nA,Alpha\nB,"Beta\nC,Gamma\n')
    with pytest.raises(InputError, match="closing") as info:
        run(store, items=quoted)
    assert info.value.line == 3


def test_duplicate_header_column(store, tmp_path):
    items = write(tmp_path / "items.csv", "item_id,title,title\nA,x,y\n")
    with pytest.raises(InputError) as info:
        run(store, items=items)
    located(info.value, items, 1, "title")


def test_line_numbers_count_newlines_inside_quoted_fields(store, tmp_path):
    items = write(tmp_path / "items.csv", 'item_id,title\nA,"two\nline title"\n\nB,Beta\nA,dup\n')
    with pytest.raises(InputError) as info:
        run(store, items=items)
    located(info.value, items, 6, "item_id")
    assert "first on line 2" in str(info.value)


def test_several_problems_are_counted_and_validate_lists_them(store, tmp_path):
    items = write(tmp_path / "items.csv", "item_id,title\nA,Alpha\nA,Again\n")
    inter = write(tmp_path / "inter.csv", "user_id,item_id,timestamp\nu,A,never\nu,Q,1\n")
    with pytest.raises(InputError, match=r"and 2 more problems"):
        run(store, items=items, interactions=inter)
    problems, _ = collect(validate(store, items=items, interactions=inter))
    assert [type(p).__name__ for p in problems] == ["InputError", "InputError", "UnknownItemsError"]
    assert [p.line for p in problems] == [3, 2, 3]
    assert counts(store) == (0, 0, 0)
    # without a project, the items file is the catalogue
    problems, _ = collect(validate(None, items=items, interactions=inter, on_unknown="skip"))
    assert [p.line for p in problems] == [3, 2]  # skipping drops the unknown item, not the bad timestamp


def test_interactions_into_an_empty_catalogue_build_it(store, tmp_path):
    # retail logs and P5 releases ship interactions only: their item ids are the catalogue
    inter = write(tmp_path / "inter.csv", "user_id,item_id,timestamp\nu,A,1\nv,B,2\nu,B,3\n")
    report, events = run(store, interactions=inter)
    assert (report.items_added, report.interactions_added, report.users) == (2, 3, 2)
    assert store.item_ids().tolist() == ["A", "B"]  # first-seen order
    assert [it["title"] for it in store.get_items([0, 1])] == [None, None]
    line = "no items file: 2 items created from the interactions' item ids; they have no text"
    assert line in report.summary()
    assert any(isinstance(e, Message) and line in e.text for e in events)
    # once there is a catalogue, new item ids in interactions are unknown items again
    more = write(tmp_path / "more.csv", "user_id,item_id,timestamp\nw,C,4\n")
    with pytest.raises(UnknownItemsError):
        run(store, interactions=more)


def test_queries_into_an_empty_catalogue(store, tmp_path):
    queries = write(tmp_path / "q.csv", "query,item_id\nred cream,A\n")
    with pytest.raises(ProjectError, match="catalogue is empty"):
        run(store, queries=queries)


def test_items_file_with_only_an_id_column(store, tmp_path):
    items = write(tmp_path / "ids.csv", "ean\n4006381333931\n4006381333948\n")
    report, _ = run(store, items=items)
    assert report.items_added == 2 and report.files[0].mapping == {"item_id": "ean"}
    assert store.item_ids().tolist() == ["4006381333931", "4006381333948"]


# --------------------------------------------------------------------------- all or nothing


def test_cancel_while_writing_rolls_everything_back(store, tmp_path):
    items = write(tmp_path / "items.csv", "item_id,title\n" + "".join(f"i{k},T{k}\n" for k in range(5)))
    inter = write(tmp_path / "inter.csv", "user_id,item_id,timestamp\n"
                  + "".join(f"u{k % 7},i{k % 5},{k}\n" for k in range(60_000)))
    token = CancelToken()
    seen = []

    def on_event(event):
        seen.append(event)
        if isinstance(event, Progress) and event.stage == "writing interactions":
            token.cancel()  # after the items and the first chunk of interactions were written

    with pytest.raises(Cancelled):
        drive(import_data(store, items=items, interactions=inter, cancel=token), on_event)
    assert any(isinstance(e, Progress) and e.stage == "writing items" for e in seen)
    assert counts(store) == (0, 0, 0)
    report, _ = run(store, items=items, interactions=inter)
    assert report.interactions_added == 60_000 and report.users == 7


def test_failure_in_a_later_file_keeps_an_existing_project_unchanged(store, tmp_path):
    run(store, items=write(tmp_path / "a.csv", "item_id,title\nA,Alpha\n"),
        interactions=write(tmp_path / "i.csv", "user_id,item_id,timestamp\nu,A,1\n"))
    before = counts(store)
    more = write(tmp_path / "b.csv", "item_id,title\nB,Beta\n")
    inter = write(tmp_path / "j.csv", "user_id,item_id,timestamp\nu,B,1\nu,A,2\n")
    queries = write(tmp_path / "q.csv", "query,item_id\nbeta,B\n,A\n")
    with pytest.raises(InputError, match="empty query text"):
        run(store, items=more, interactions=inter, queries=queries)
    assert counts(store) == before


# --------------------------------------------------------------------------- preview


def test_preview_detects_mapping_and_problems_without_writing(store, tmp_path):
    path = write(tmp_path / "orders.csv", "InvoiceNo,StockCode,Quantity,InvoiceDate,CustomerID\n"
                                          "1,85123A,6,2010-12-01 08:26:00,17850.0\n"
                                          "2,71053,6,yesterday,17850.0\n" * 1)
    p = preview(path, "interactions", n=10)
    assert p.mapping == {"user_id": "CustomerID", "item_id": "StockCode", "timestamp": "InvoiceDate"}
    assert set(p.detected) == {"user_id", "item_id", "timestamp"}
    assert p.ignored == ["InvoiceNo", "Quantity"]
    assert list(p.rows.columns) == ["InvoiceNo", "StockCode", "Quantity", "InvoiceDate", "CustomerID"]
    assert len(p.problems) == 1
    located(p.problems[0], path, 3, "InvoiceDate")
    assert p.normalized is None and counts(store) == (0, 0, 0)
    assert [t.name for t in p.targets][:3] == ["user_id", "item_id", "timestamp"]


def test_preview_reads_only_the_head_and_returns_reading_problems(store, tmp_path):
    path = write(tmp_path / "items.csv", "item_id,title\n" + "".join(f"i{k},T{k}\n" for k in range(1000)))
    p = preview(path, "items", n=5, store=store)
    assert len(p.rows) == 5 and p.normalized["item_id"].tolist() == [f"i{k}" for k in range(5)]
    assert p.problems == [] and p.reader == "csv"
    broken = write(tmp_path / "bad.csv", "item_id,title\n1,Les Misérables\n", encoding="latin-1")
    p = preview(broken, "items")
    assert len(p.problems) == 1 and p.problems[0].line == 2 and p.mapping == {}
    p = preview(path, "items", mapping={"interactions": {"user_id": "x"}, "items": {"title": "item_id"}})
    assert p.mapping == {"title": "item_id"} and p.problems[0].field == "item_id"


# --------------------------------------------------------------------------- real data


@pytest.mark.shared_data
def test_beauty_through_the_generic_path(store):
    folder = shared_dataset("amazon2014_beauty_5core")
    report, _ = run(store, items=folder / "items.jsonl.gz", interactions=folder / "interactions.tsv.gz")
    assert (report.items_added, report.interactions_added, report.users) == (12101, 198502, 22363)
    assert [f.reader for f in report.files] == ["jsonl", "tsv"]
    item = store.get_items([store.item_index()["7806397051"]])[0]
    assert item["brand"] == "COKA" and item["categories"][0] == "Beauty" and item["price"] == 5.04
    assert item["sales_rank"] == 10486
    first_user = store.user_history("A1YJEY40YUW4SE")
    assert store.item_ids()[first_user[0]] == "B004756YJA"


@pytest.mark.shared_data
def test_uci_online_retail(store, tmp_path):
    raw = shared_dataset("uci_online_retail_sample") / "online_retail_first8000.csv"
    # the transaction file repeats every product: as a catalogue it is refused, naming both lines
    with pytest.raises(InputError) as info:
        run(store, items=raw)
    located(info.value, raw, 49, "StockCode")
    assert "first on line 10" in str(info.value)
    frame = pd.read_csv(raw, dtype=str).drop_duplicates("StockCode")[["StockCode", "Description"]]
    frame.to_csv(tmp_path / "products.csv", index=False)
    with pytest.raises(InputError, match="empty user id"):
        run(store, items=tmp_path / "products.csv", interactions=raw)
    report, _ = run(store, items=tmp_path / "products.csv", interactions=raw, on_unknown="skip")
    assert report.items_added == 1897 and report.interactions_added == 5710 and report.users == 277
    assert report.files[1].skipped == {"no user id": 2290}
    assert report.files[1].mapping == {"user_id": "CustomerID", "item_id": "StockCode", "timestamp": "InvoiceDate"}
    assert store.get_items([0])[0]["title"] == "WHITE HANGING HEART T-LIGHT HOLDER"  # Description as title
    history = store.user_history("17850")
    assert store.item_ids()[history[0]] == "85123A"
    ts = store.interactions_frame()["ts"]
    assert ts.min() == pd.Timestamp("2010-12-01 08:26:00", tz="UTC").timestamp()
    assert ts.max() <= pd.Timestamp("2010-12-05 12:00:00", tz="UTC").timestamp()


def test_a_target_can_be_left_unmapped(store, tmp_path):
    items = write(tmp_path / "items.csv", "item_id,name,ean\nA,Alpha,4006381333931123\n")
    report, events = run(store, items=items, mapping={"title": None})
    item = store.get_items([0])[0]
    assert item["title"] is None and item["name"] == "Alpha"
    assert item["ean"] == "4006381333931123"  # 16 digits: kept as text, a float would lose digits
    assert any(e.level == "warning" and "no title column" in e.text for e in events if isinstance(e, Message))
    with pytest.raises(InputError, match="item id is required"):
        run(store, items=items, mapping={"item_id": None})


def test_preview_of_a_json_array_and_of_a_long_quoted_field(tmp_path):
    records = [{"item_id": f"i{k}", "title": f"T{k}"} for k in range(300)]
    array = write(tmp_path / "items.json", json.dumps(records, indent=2))  # ~1200 lines
    p = preview(array, "items", n=3)
    assert p.problems == [] and p.reader == "json" and len(p.rows) == 3
    long_field = "line\n" * 400
    csv_path = write(tmp_path / "items.csv", f'item_id,title\nA,"{long_field}"\nB,Beta\n')
    p = preview(csv_path, "items", n=2)
    assert p.problems == [] and p.normalized["item_id"].tolist() == ["A", "B"]


def test_booleans_are_not_timestamps():
    _secs, bad, _units = parse_timestamps(pd.Series([True, 1.5e9], dtype=object))
    assert bad.tolist() == [True, False]


def test_spreadsheet_export_with_bom_crlf_and_semicolons(store, tmp_path):
    text = "\ufeffArtikel-ID;Name;Preis\r\n0042;Kaffeemühle;12,50\r\n0043;Teekanne;9\r\n"
    items = write(tmp_path / "artikel.csv", text)
    report, _ = run(store, items=items, mapping={"item_id": "Artikel-ID"})
    assert report.files[0].reader == "delimited (';')"
    first = store.get_items([0])[0]
    assert first["item_id"] == "0042" and first["title"] == "Kaffeemühle" and first["Preis"] == "12,50"
    assert store.get_items([1])[0]["Preis"] == "9"  # the column is not all numbers: it stays text


# --------------------------------------------------------------------------- list fields: paths or sets


@pytest.mark.shared_data
def test_list_fields_are_told_apart_on_real_data():
    from semid_studio.core.field_kinds import detect_list_kind

    beauty = shared_dataset("amazon2014_beauty_5core") / "items.jsonl.gz"
    with gzip.open(beauty, "rt") as fh:
        categories = [json.loads(line).get("categories") for line in fh]
    assert detect_list_kind(categories)[0] == "path"
    movies = pd.read_csv(shared_dataset("movielens_tomt") / "ml-latest-small" / "movies.csv")
    assert detect_list_kind(g.split("|") for g in movies["genres"])[0] == "set"


@pytest.mark.shared_data
def test_field_kind_given_on_import_is_stored_and_used(store, tmp_path):
    from semid_studio.core.sids import store_label_values

    movies = shared_dataset("movielens_tomt") / "ml-latest-small" / "movies.csv"
    report, _ = run(store, items=movies, field_kinds=["genres=path"])
    assert store.get_meta("field_kinds") == {"genres": "path", "tags": "set"}
    assert store_label_values(store, "genres")[0] == "Adventure"  # a path: its first level
    store.set_meta("field_kinds", {"genres": "set"})
    assert store_label_values(store, "genres")[0] == ("Adventure", "Animation", "Children", "Comedy", "Fantasy")
    with pytest.raises(InputError, match="sets of values, not paths") as err:
        store_label_values(store, "genres[1]")
    assert err.value.field == "genres"


def test_field_kind_errors_name_the_field(store, tmp_path):
    items = write(tmp_path / "items.jsonl", '{"item_id": "a", "title": "A", "brand": "X", "tags": ["p", "q"]}\n')
    with pytest.raises(InputError, match="no list field 'genre'") as err:
        run(store, items=items, field_kinds={"genre": "set"})
    assert err.value.field == "genre" and str(items) in str(err.value)
    with pytest.raises(InputError, match="'brand' holds single values"):
        run(store, items=items, field_kinds={"brand": "set"})
    with pytest.raises(InputError, match="unknown kind 'bag'"):
        run(store, items=items, field_kinds={"tags": "bag"})
    assert store.item_count() == 0
