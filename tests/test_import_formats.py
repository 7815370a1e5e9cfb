"""Named formats: MovieLens (100k, 1m, latest), Amazon reviews + metadata (2014, 2018, 2023) and
RecBole atomic files, from small realistic fixtures written here and from the real files in
../shared/data where they are."""

from __future__ import annotations

import gzip
import json
import shutil

import pandas as pd
import pytest

from semid_studio.core.errors import InputError
from semid_studio.core.events import collect
from semid_studio.core.importing import detect_reader, import_data
from semid_studio.core.store import ProjectStore

from conftest import shared_dataset


@pytest.fixture
def store(tmp_path):
    s = ProjectStore.create(tmp_path / "p.semid")
    yield s
    s.close()


def run(store, **kwargs):
    return collect(import_data(store, **kwargs))


def item(store, item_id):
    return store.get_items([store.item_index()[item_id]])[0]


def gz_lines(path, lines):
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        fh.write("".join(line + "\n" for line in lines))
    return path


# --------------------------------------------------------------------------- MovieLens

_FLAGS_TOY = "0|0|0|1|1|1|0|0|0|0|0|0|0|0|0|0|0|0|0"
_FLAGS_MIS = "0|0|0|0|0|0|0|0|1|0|0|0|1|0|0|0|0|0|0"


def ml100k(folder, *, genre_file=True):
    folder.mkdir(exist_ok=True)
    u_item = (
        f"1|Toy Story (1995)|01-Jan-1995||http://us.imdb.com/M/title-exact?Toy%20Story%20(1995)|{_FLAGS_TOY}\n"
        f"543|Misérables, Les (1995)|01-Jan-1995||http://us.imdb.com/M/title-exact?Mis%E9rables|{_FLAGS_MIS}\n"
        f"267|unknown||||1{'|0' * 18}\n"
    )
    (folder / "u.item").write_bytes(u_item.encode("latin-1"))
    if genre_file:
        genres = ["unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary",
                  "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller",
                  "War", "Western"]
        (folder / "u.genre").write_text("".join(f"{g}|{i}\n" for i, g in enumerate(genres)) + "\n")
    (folder / "u.data").write_text("196\t1\t3\t881250949\n186\t543\t3\t891717742\n196\t267\t1\t881251000\n")
    return folder


@pytest.mark.parametrize("fmt", ["movielens", "auto"])
def test_movielens_100k(store, tmp_path, fmt):
    folder = ml100k(tmp_path / "ml-100k", genre_file=fmt == "auto")
    report, _ = run(store, items=folder / "u.item", interactions=folder / "u.data", format=fmt)
    assert (report.items_added, report.interactions_added, report.users) == (3, 3, 2)
    assert [f.reader for f in report.files] == ["ml-100k", "ml-100k"]
    toy = item(store, "1")
    assert toy["title"] == "Toy Story (1995)" and toy["year"] == 1995 and toy["release_date"] == "1995-01-01"
    assert toy["genres"] == ["Animation", "Children's", "Comedy"]
    mis = item(store, "543")
    assert mis["title"] == "Misérables, Les (1995)"  # Latin-1 decoded
    assert mis["genres"] == ["Drama", "Musical"]
    unknown = item(store, "267")
    assert unknown["year"] is None and unknown["release_date"] is None and unknown["genres"] == ["unknown"]
    assert any("Latin-1" in note for note in report.files[0].notes)
    assert store.user_history("196") == [store.item_index()["1"], store.item_index()["267"]]


def test_movielens_100k_bad_lines(store, tmp_path):
    folder = ml100k(tmp_path / "ml")
    path = folder / "u.item"
    lines = path.read_bytes().split(b"\n")
    path.write_bytes(b"\n".join([lines[0], b"2|GoldenEye (1995)|01-Jan-1995||url|0|1"] + lines[1:]))
    with pytest.raises(InputError, match="expected 24 '|'-separated fields") as info:
        run(store, items=path, format="movielens")
    assert info.value.line == 2 and info.value.file == str(path)
    path.write_bytes(b"\n".join([lines[0], b"2|GoldenEye (1995)|01-Jan-1995||url|" + b"|".join([b"0"] * 18)
                                 + b"|x"] + lines[1:]))
    with pytest.raises(InputError) as info:
        run(store, items=path)
    assert (info.value.line, info.value.field) == (2, "Western")
    path.write_bytes(b"\n".join([lines[0], b"2|GoldenEye (1995)|1995/01/01||url|" + b"|".join([b"0"] * 19)]))
    with pytest.raises(InputError, match="release date '1995/01/01'") as info:
        run(store, items=path)
    assert (info.value.line, info.value.field) == (2, "release date")


def test_movielens_1m(store, tmp_path):
    folder = tmp_path / "ml-1m"
    folder.mkdir()
    movies = ("1::Toy Story (1995)::Animation|Children's|Comedy\n"
              "73::Misérables, Les (1995)::Drama|Musical\n"
              "648::Mission: Impossible (1996)::Action|Adventure|Mystery\n")
    (folder / "movies.dat").write_bytes(movies.encode("latin-1"))
    (folder / "ratings.dat").write_text("1::1::5::978300760\n1::648::3::978302109\n2::73::4::978298413\n")
    (folder / "users.dat").write_text("1::F::1::10::48067\n")
    report, _ = run(store, items=folder / "movies.dat", interactions=folder / "ratings.dat")
    assert (report.items_added, report.interactions_added, report.users) == (3, 3, 2)
    assert item(store, "73")["title"] == "Misérables, Les (1995)"
    mission = item(store, "648")
    assert mission["title"] == "Mission: Impossible (1996)" and mission["year"] == 1996
    assert mission["genres"] == ["Action", "Adventure", "Mystery"]
    assert store.interactions_frame()["ts"].min() == 978298413.0
    with pytest.raises(InputError, match="users.dat"):
        run(store, items=folder / "users.dat", format="movielens")
    (folder / "bad.dat").write_text("1::Toy Story (1995)::Animation\n2::GoldenEye (1995)\n")
    with pytest.raises(InputError, match="MovieID::Title::Genres") as info:
        run(store, items=folder / "bad.dat", format="movielens")
    assert info.value.line == 2


def test_movielens_latest_with_tags(store, tmp_path):
    folder = tmp_path / "ml-latest-small"
    folder.mkdir()
    (folder / "movies.csv").write_text(
        "movieId,title,genres\n1,Toy Story (1995),Adventure|Animation|Children|Comedy|Fantasy\n"
        '11,"American President, The (1995)",Comedy|Drama|Romance\n'
        "182727,A Christmas Story Live! (2017),(no genres listed)\n")
    (folder / "tags.csv").write_text("userId,movieId,tag,timestamp\n336,1,pixar,1139045764\n474,1,Pixar,1137206825\n"
                                     "567,1,fun,1525286013\n474,11,politics,1137374904\n")
    (folder / "ratings.csv").write_text("userId,movieId,rating,timestamp\n1,1,4.0,964982703\n1,11,3.5,964981247\n")
    queries = gz_lines(folder.parent / "queries.jsonl.gz", [
        json.dumps({"query_id": "6jd4bz", "split": "train", "movieId": 11, "query": "[TOMT] a president falls in love",
                    "url": "https://reddit.com/x"}),
        json.dumps({"query_id": "cnf979", "split": "validation", "movieId": 1, "query": "toys come alive"}),
    ])
    report, _ = run(store, items=folder / "movies.csv", interactions=folder / "ratings.csv", queries=queries)
    assert [f.reader for f in report.files] == ["ml-latest", "csv", "jsonl"]
    assert (report.items_added, report.interactions_added, report.queries_added) == (3, 2, 2)
    toy = item(store, "1")
    assert toy["tags"] == ["pixar", "fun"] and toy["year"] == 1995 and toy["genres"][0] == "Adventure"
    pres = item(store, "11")
    assert pres["title"] == "American President, The (1995)" and pres["tags"] == ["politics"]
    assert item(store, "182727")["genres"] == [] and item(store, "182727")["tags"] == []
    q = store.queries_frame()
    assert q["query_id"].tolist() == ["6jd4bz", "cnf979"] and q["split"].tolist() == ["train", "validation"]
    assert q["item_idx"].tolist() == [1, 0]


def test_recbole_atomic_files(store, tmp_path):
    (tmp_path / "toy.item").write_text(
        "item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\tprice:float\n"
        "1\tToy Story\t1995\tAnimation Children's Comedy\t9.5\n2\tGoldenEye\t1995\tAction Thriller\t\n")
    (tmp_path / "toy.inter").write_text("user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
                                        "196\t1\t3\t881250949\n186\t2\t3\t891717742\n")
    assert detect_reader(tmp_path / "toy.item") == ("recbole", "\t")
    report, _ = run(store, items=tmp_path / "toy.item", interactions=tmp_path / "toy.inter")
    toy = item(store, "1")
    assert toy["title"] == "Toy Story"  # a token_seq used as the title stays one string
    assert toy["class"] == ["Animation", "Children's", "Comedy"] and toy["release_year"] == "1995"
    assert toy["price"] == 9.5 and item(store, "2")["price"] is None
    other = ProjectStore.create(tmp_path / "q.semid")
    run(other, items=tmp_path / "toy.item", format="movielens")
    assert other.get_items([0])[0]["genres"] == ["Animation", "Children's", "Comedy"]
    assert other.get_items([0])[0]["year"] == "1995"
    other.close()


# --------------------------------------------------------------------------- Amazon


def _meta_2014_lines():
    return [
        "{'asin': '7806397051', 'title': 'WAWO 15 Color Professionl Makeup Eyeshadow Camouflage Facial Concealer "
        "Neutral Palette', 'price': 5.04, 'imUrl': 'http://ecx.images-amazon.com/images/I/31IlLImCVJL._SY300_.jpg', "
        "'related': {'also_bought': ['B00A', 'B00B']}, 'salesRank': {'Beauty': 10486}, "
        "'categories': [['Beauty', 'Makeup', 'Face', 'Concealers & Neutralizers'], ['Beauty', 'Other']], "
        "'brand': 'COKA'}",
        "{'asin': 'B00004TMFE', 'description': \"Men's cologne &amp; aftershave\", 'categories': [['Beauty']], "
        "'title': \"Men's Cologne\"}",
    ]


def _reviews_2014_lines():
    return [json.dumps(r) for r in [
        {"reviewerID": "A1YJEY40YUW4SE", "asin": "7806397051", "reviewerName": "Andrea", "helpful": [3, 4],
         "reviewText": "Very oily and creamy.", "overall": 1.0, "summary": "Don't waste your money",
         "unixReviewTime": 1391040000, "reviewTime": "01 30, 2014"},
        {"reviewerID": "A60XNB876KYML", "asin": "B00004TMFE", "overall": 3.0, "reviewText": "ok",
         "unixReviewTime": 1397779200, "reviewTime": "04 18, 2014"},
        {"reviewerID": "A60XNB876KYML", "asin": "7806397051", "overall": 4.0, "reviewTime": "09 1, 2013"},
    ]]


@pytest.mark.parametrize("fmt", ["amazon", "auto"])
def test_amazon_2014(store, tmp_path, fmt):
    meta = gz_lines(tmp_path / "meta_Beauty.json.gz", _meta_2014_lines())
    reviews = gz_lines(tmp_path / "reviews_Beauty_5.json.gz", _reviews_2014_lines())
    report, _ = run(store, items=meta, interactions=reviews, format=fmt)
    assert [f.reader for f in report.files] == ["amazon-2014-meta", "amazon-2014-reviews"]
    assert (report.items_added, report.interactions_added, report.users) == (2, 3, 2)
    wawo = item(store, "7806397051")
    assert wawo["categories"] == ["Beauty", "Makeup", "Face", "Concealers & Neutralizers"]  # the first path
    assert wawo["brand"] == "COKA" and wawo["price"] == 5.04
    assert (wawo["sales_rank"], wawo["sales_rank_category"]) == (10486, "Beauty")
    assert "related" not in wawo and "imUrl" not in wawo
    cologne = item(store, "B00004TMFE")
    assert cologne["title"] == "Men's Cologne" and cologne["price"] is None and cologne["brand"] is None
    history = store.interactions_frame()
    assert history["ts"].tolist() == [1391040000.0, 1377993600.0, 1397779200.0]  # reviewTime when no unix time


def test_amazon_2014_metadata_is_never_evaluated(store, tmp_path):
    marker = tmp_path / "pwned"
    lines = _meta_2014_lines() + [f"{{'asin': 'X', 'title': open({str(marker)!r}, 'w').write('x')}}"]
    meta = gz_lines(tmp_path / "meta_Beauty.json.gz", lines)
    with pytest.raises(InputError, match="not valid JSON") as info:
        run(store, items=meta, format="amazon")
    assert info.value.line == 3 and not marker.exists()
    assert store.item_count() == 0


def test_amazon_2018(store, tmp_path):
    meta = gz_lines(tmp_path / "meta_All_Beauty.json.gz", [json.dumps(r) for r in [
        {"asin": "B0001", "title": "Face Wash", "brand": "Clean Co", "category": ["Beauty & Personal Care", "Skin Care"],
         "price": "$12.99", "rank": "1,234 in Beauty & Personal Care (", "main_cat": "All Beauty",
         "feature": ["gentle", "foaming"], "description": ["For all skin.", "Rinse well."], "also_buy": ["B0002"]},
        {"asin": "B0002", "title": "Toner", "category": [], "price": "$5.99 - $12.99", "rank": ["55 in Beauty ("]},
        {"asin": "B0003", "title": "Odd", "price": ".a-section { display: none }" * 3},
    ]])
    reviews = gz_lines(tmp_path / "All_Beauty.json.gz", [json.dumps(r) for r in [
        {"overall": 5.0, "verified": True, "reviewTime": "09 1, 2016", "reviewerID": "R1", "asin": "B0001",
         "unixReviewTime": 1472688000, "vote": "2", "style": {"Size:": " 8 oz"}},
        {"overall": 2.0, "verified": False, "reviewerID": "R2", "asin": "B0003", "unixReviewTime": 1472774400},
    ]])
    report, _ = run(store, items=meta, interactions=reviews, format="amazon")
    assert [f.reader for f in report.files] == ["amazon-2018-meta", "amazon-2018-reviews"]
    wash = item(store, "B0001")
    assert wash["price"] == 12.99 and wash["categories"] == ["Beauty & Personal Care", "Skin Care"]
    assert (wash["sales_rank"], wash["sales_rank_category"]) == (1234, "Beauty & Personal Care")
    assert wash["description"] == "For all skin. Rinse well." and wash["features"] == ["gentle", "foaming"]
    assert wash["main_category"] == "All Beauty"
    toner = item(store, "B0002")
    assert toner["price"] == 5.99 and toner["sales_rank"] == 55 and toner["categories"] == []
    assert item(store, "B0003")["price"] is None
    assert store.interaction_count() == 2


def test_amazon_2023(store, tmp_path):
    meta = tmp_path / "meta_All_Beauty.jsonl"
    meta.write_text("".join(json.dumps(r) + "\n" for r in [
        {"main_category": "All Beauty", "title": "Howard LC0008 Leather Conditioner", "average_rating": 4.8,
         "rating_number": 10, "features": [], "description": [], "price": None, "images": [], "videos": [],
         "store": "Howard Products", "categories": [], "details": {"Package Dimensions": "7 x 3 x 2 inches"},
         "parent_asin": "B01CUPMQZE", "bought_together": None},
        {"main_category": "All Beauty", "title": "Yes To Tomatoes Mask", "features": ["clay"], "price": 9.99,
         "store": "Yes To", "categories": ["Beauty", "Masks"], "description": ["Detoxifying."],
         "parent_asin": "B076WQZGPM"},
    ]))
    reviews = tmp_path / "All_Beauty.jsonl"
    reviews.write_text("".join(json.dumps(r) + "\n" for r in [
        {"rating": 5.0, "title": "Such a lovely scent", "text": "...", "images": [], "asin": "B00YQ6X8EO",
         "parent_asin": "B01CUPMQZE", "user_id": "AGKHLEW2SOWHNMFQIJGBECAF7INQ", "timestamp": 1588687728923,
         "helpful_vote": 0, "verified_purchase": True},
        {"rating": 4.0, "title": "ok", "text": "...", "asin": "B076WQZGPM", "parent_asin": "B076WQZGPM",
         "user_id": "AGKHLEW2SOWHNMFQIJGBECAF7INQ", "timestamp": 1588616567542, "helpful_vote": 1},
    ]))
    report, _ = run(store, items=meta, interactions=reviews, format="amazon")
    assert [f.reader for f in report.files] == ["amazon-2023-meta", "amazon-2023-reviews"]
    howard = item(store, "B01CUPMQZE")
    assert howard["brand"] == "Howard Products" and howard["price"] is None and howard["average_rating"] == 4.8
    mask = item(store, "B076WQZGPM")
    assert mask["price"] == 9.99 and mask["categories"] == ["Beauty", "Masks"] and mask["description"] == "Detoxifying."
    frame = store.interactions_frame()
    assert frame["ts"].tolist() == [1588616567.542, 1588687728.923]  # milliseconds -> seconds, sorted by time
    assert store.user_history("AGKHLEW2SOWHNMFQIJGBECAF7INQ") == [1, 0]


def test_named_format_leaves_other_files_to_auto(store, tmp_path):
    folder = ml100k(tmp_path / "ml")
    queries = tmp_path / "queries.csv"
    queries.write_text("text,item_id\ntoys that come alive,1\n")
    report, _ = run(store, items=folder / "u.item", queries=queries, format="movielens")
    assert [f.reader for f in report.files] == ["ml-100k", "csv"] and report.queries_added == 1


# --------------------------------------------------------------------------- real files


@pytest.mark.shared_data
def test_real_movielens_100k_raw_items_with_recbole_ratings(store):
    folder = shared_dataset("movielens_100k")
    report, _ = run(store, items=folder / "grouplens_raw" / "u.item",
                    interactions=folder / "recbole_atomic" / "ml-100k.inter", format="movielens")
    assert (report.items_added, report.interactions_added, report.users) == (1682, 100000, 943)
    assert item(store, "543")["title"] == "Misérables, Les (1995)"
    assert item(store, "1")["genres"] == ["Animation", "Children's", "Comedy"]
    assert item(store, "1682")["year"] == 1991  # the film's year (title), not the 1996 release date


@pytest.mark.shared_data
def test_real_movielens_latest_small_with_queries(store):
    folder = shared_dataset("movielens_tomt")
    report, _ = run(store, items=folder / "ml-latest-small" / "movies.csv",
                    interactions=folder / "ml-latest-small" / "ratings.csv", queries=folder / "queries.jsonl.gz")
    assert (report.items_added, report.interactions_added, report.users, report.queries_added) == \
        (9742, 100836, 610, 3212)
    assert report.files[2].mapping == {"text": "query", "item_id": "movieId", "split": "split",
                                       "query_id": "query_id"}
    assert store.query_count("train") == 2840 and store.query_count("validation") == 372
    assert item(store, "1")["tags"] == ["pixar", "fun"]


@pytest.mark.shared_data
def test_real_movielens_1m_movies(store):
    path = shared_dataset("movielens_1m_metadata_only") / "movies.dat"
    report, _ = run(store, items=path)
    assert report.items_added == 3883 and item(store, "73")["title"] == "Misérables, Les (1995)"


@pytest.mark.shared_data
def test_real_recbole_beauty_items_with_a_multiline_title(store):
    path = shared_dataset("amazon2014_beauty_5core") / "raw" / "recbole_sae_Amazon_Beauty.item.gz"
    report, _ = run(store, items=path)
    assert report.items_added == 12101 and report.files[0].reader == "recbole"
    prada = item(store, "9788072216")
    assert prada["categories"] == ["Beauty", "Fragrance", "Women's", "Eau de Parfum"]
    titles = store.items_frame()["title"]
    assert titles.str.contains("\n").sum() == 1


# --------------------------------------------------------------------------- P5 and plain rating files


def p5_slice(folder, dataset="amazon2014_sports_5core", n_lines=40, name="p5_sequential_data.txt.gz",
             with_datamaps=True):
    """The first lines of a real P5 sequential file (and its datamaps.json beside it) in ``folder``."""
    raw = shared_dataset(dataset) / "raw"
    with gzip.open(raw / "p5_sequential_data.txt.gz", "rt") as fh:
        lines = [next(fh).rstrip("\n") for _ in range(n_lines)]
    folder.mkdir(exist_ok=True)
    target = gz_lines(folder / name, lines) if name.endswith(".gz") else folder / name
    if not name.endswith(".gz"):
        target.write_text("".join(line + "\n" for line in lines))
    if with_datamaps:
        shutil.copy(raw / "p5_datamaps.json.gz", folder / "p5_datamaps.json.gz")
    return target, lines


@pytest.mark.shared_data
def test_p5_sequential_with_its_datamaps_beside(store, tmp_path):
    seq, lines = p5_slice(tmp_path)
    assert detect_reader(seq)[0] == "p5"
    report, events = run(store, interactions=seq)  # no items file: the catalogue is the item ids
    n_inter = sum(len(line.split()) - 1 for line in lines)
    n_items = len({i for line in lines for i in line.split()[1:]})
    assert (report.items_added, report.interactions_added, report.users) == (n_items, n_inter, len(lines))
    notes = report.files[1].notes
    assert any("timestamps are the positions" in n for n in notes)
    assert any("mapped back to the original ids with p5_datamaps.json.gz" in n for n in notes)
    # the first user of Sports is AIXZKN4ACSKI (SOURCE.md); its history is the P5 line, in order
    first = store.interactions_frame().query("user_id == 'AIXZKN4ACSKI'")
    ids = store.item_ids()
    assert ids[first["item_idx"]].tolist()[:2] == ["1881509818", "B0048KGFHU"]
    assert first["ts"].tolist() == [float(k) for k in range(len(lines[0].split()) - 1)]
    reference = pd.read_csv(shared_dataset("amazon2014_sports_5core") / "interactions.tsv.gz", sep="\t",
                            dtype=str, nrows=len(lines[0].split()) - 1)
    assert ids[first["item_idx"]].tolist() == reference["item_id"].tolist()


@pytest.mark.shared_data
def test_p5_detected_by_content_without_datamaps(store, tmp_path):
    # a renamed copy (no 'sequential' in the name, no datamaps.json beside it): P5's numbers stay
    seq, lines = p5_slice(tmp_path, "amazon2014_beauty_5core", n_lines=20, name="beauty.txt",
                          with_datamaps=False)
    assert detect_reader(seq)[0] == "p5"
    report, _ = run(store, interactions=seq)
    assert report.users == 20 and store.users()[0][0].isdigit()
    assert any("ids are P5's numbers" in n for n in report.files[1].notes)


@pytest.mark.shared_data
def test_p5_format_forced_and_datamaps_as_the_items_file(store, tmp_path):
    seq, lines = p5_slice(tmp_path / "seq", n_lines=30, name="interactions.dat", with_datamaps=False)
    datamaps = shared_dataset("amazon2014_sports_5core") / "raw" / "p5_datamaps.json.gz"
    report, _ = run(store, items=datamaps, interactions=seq, format="p5")
    assert report.items_added == 18357  # every item of Sports, with no text
    assert report.files[0].reader == "p5 datamaps" and store.get_items([0])[0]["title"] is None
    assert report.interactions_added == sum(len(line.split()) - 1 for line in lines)
    assert "AIXZKN4ACSKI" in {u for u, _n in store.users()}  # mapped with the items file's id2user


@pytest.mark.shared_data
def test_p5_files_given_as_the_wrong_kind_say_what_they_are(store, tmp_path):
    seq, _ = p5_slice(tmp_path, n_lines=5)
    datamaps = tmp_path / "p5_datamaps.json.gz"
    with pytest.raises(InputError, match="this is a P5 datamaps.json") as err:
        run(store, interactions=datamaps)
    assert "sequential_data.txt" in str(err.value) and "--map" not in str(err.value)
    with pytest.raises(InputError, match="this is a P5 sequential file") as err:
        run(store, items=seq)
    assert "interactions file" in str(err.value) and "--map" not in str(err.value)
    bad = tmp_path / "sequential.txt"
    bad.write_text("1 2 3\n2 x 4\n")
    with pytest.raises(InputError, match="'x' is not a number") as err:
        run(store, interactions=bad)
    assert err.value.line == 2


@pytest.mark.shared_data
def test_real_p5_sports_all_of_it(store):
    raw = shared_dataset("amazon2014_sports_5core") / "raw"
    report, _ = run(store, interactions=raw / "p5_sequential_data.txt.gz")
    assert (report.items_added, report.interactions_added, report.users) == (18357, 296337, 35598)  # SOURCE.md


@pytest.mark.shared_data
@pytest.mark.parametrize("sep,fields", [("\t", 4), (" ", 4), (",", 3)])
def test_ratings_without_a_header(store, tmp_path, sep, fields):
    # MovieLens u.data is 'user item rating timestamp' with no header; copies use other separators
    inter = shared_dataset("movielens_100k") / "recbole_atomic" / "ml-100k.inter"
    rows = [line.split("\t") for line in inter.read_text().splitlines()[1:201]]
    if fields == 3:
        rows = [[u, i, t] for u, i, _r, t in rows]
    path = tmp_path / "ratings.txt"
    path.write_text("".join(sep.join(r) + "\n" for r in rows))
    items = tmp_path / "items.csv"
    items.write_text("item_id\n" + "".join(f"{i}\n" for i in sorted({r[1] for r in rows})))
    report, _ = run(store, items=items, interactions=path)
    assert report.interactions_added == 200 and "no header" in report.files[1].reader
    assert store.interactions_frame()["ts"].min() > 8e8  # the timestamp column, not the rating
    assert ("rating" in report.files[1].mapping) == (fields == 4)


@pytest.mark.shared_data
def test_whitespace_separated_header(store, tmp_path):
    inter = shared_dataset("movielens_100k") / "recbole_atomic" / "ml-100k.inter"
    rows = [line.split("\t") for line in inter.read_text().splitlines()[1:101]]
    path = tmp_path / "ratings.txt"
    path.write_text("user   item  rating  time\n" + "".join("  ".join(r) + "\n" for r in rows))
    report, _ = run(store, interactions=path)
    assert report.files[1].mapping == {"user_id": "user", "item_id": "item", "timestamp": "time",
                                       "rating": "rating"}
    assert report.interactions_added == 100


@pytest.mark.shared_data
def test_real_recbole_ml100k_atomic_files(store):
    folder = shared_dataset("movielens_100k") / "recbole_atomic"
    report, _ = run(store, items=folder / "ml-100k.item", interactions=folder / "ml-100k.inter")
    assert (report.items_added, report.interactions_added, report.users) == (1682, 100000, 943)
    assert [f.reader for f in report.files] == ["recbole", "recbole"]
