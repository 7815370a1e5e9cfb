"""MovieLens: ml-100k (``u.item`` with 19 genre flags, ``u.data``), ml-1m (``::``-separated
``.dat`` files) and ml-latest(-small) (``movies.csv`` with ``tags.csv`` beside it aggregated into
a ``tags`` list); Latin-1 originals and UTF-8 copies are both read."""

from __future__ import annotations

import datetime as _dt
import re
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputError
from ..events import NEVER, CancelToken, TaskGenerator
from .readers import Table, decode, empty_file, read_bytes, read_delimited, read_text, records_frame


#: the 19 genres of ml-100k, in flag order (used when u.genre is not beside u.item)
ML100K_GENRES = ("unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary",
                 "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi",
                 "Thriller", "War", "Western")
_RATINGS_NAMES = ["user_id", "item_id", "rating", "timestamp"]


_YEAR_IN_TITLE = re.compile(r"\((\d{4})(?:[-\u2013]\d{0,4})?\)\s*$")


def _movielens_text(path: Path, encoding: str | None, max_lines: int | None) -> tuple[str, str | None]:
    """UTF-8 when the bytes are valid UTF-8, else Latin-1 (GroupLens' encoding), unless given."""
    data = read_bytes(path, max_lines=max_lines)
    if encoding:
        return decode(data, path, encoding), None
    try:
        return data.decode("utf-8-sig"), None
    except UnicodeDecodeError:
        return data.decode("latin-1"), "read as Latin-1 (not valid UTF-8; the GroupLens files are Latin-1)"


def read_movielens(path: Path, variant: str, encoding: str | None, *, limit: int | None = None,
                   max_lines: int | None = None, cancel: CancelToken = NEVER) -> TaskGenerator[Table]:
    if variant == "ml-1m-users":
        raise InputError("this is MovieLens users.dat (user attributes); import movies.dat as items and "
                         "ratings.dat as interactions", file=str(path))
    if variant == "ml-latest-movies":
        return (yield from _ml_latest_movies(path, encoding, limit, max_lines, cancel))
    text, note = _movielens_text(path, encoding, max_lines)
    if variant in ("ml-100k-ratings", "ml-1m-ratings"):
        sep = "\t"
        if variant == "ml-1m-ratings":
            text = text.replace("::", "\t")  # keeps every line where it was; the C parser wants 1 char
        table = yield from read_delimited(path, text, sep, reader=variant.replace("-ratings", ""),
                                          names=list(_RATINGS_NAMES), limit=limit, cancel=cancel)
    elif variant == "ml-100k-items":
        table = _ml100k_items(path, text, limit)
    else:
        table = _ml1m_movies(path, text, limit)
    if note:
        table.notes.append(note)
    return table


def _lines(text: str, limit: int | None):
    count = 0
    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw.rstrip("\r")
        if not line.strip():
            continue
        yield number, line
        count += 1
        if limit and count >= limit:
            return


def _year(title: str | None) -> int | None:
    match = _YEAR_IN_TITLE.search(title or "")
    return int(match.group(1)) if match else None


def _ml100k_items(path: Path, text: str, limit: int | None) -> Table:
    genres = list(ML100K_GENRES)
    genre_file = path.with_name("u.genre")
    if genre_file.exists():
        named = [ln.split("|")[0] for ln in genre_file.read_bytes().decode("latin-1").splitlines() if "|" in ln]
        if named:
            genres = named
    n_fields = 5 + len(genres)
    records, lines = [], []
    for number, line in _lines(text, limit):
        parts = line.split("|")
        if len(parts) != n_fields:
            raise InputError(f"expected {n_fields} '|'-separated fields (id|title|release date|video release "
                             f"date|IMDb URL|{len(genres)} genre flags), found {len(parts)}",
                             file=str(path), line=number)
        flags = parts[5:]
        bad = next((g for g, f in zip(genres, flags) if f.strip() not in ("0", "1")), None)
        if bad is not None:
            raise InputError(f"genre flag must be 0 or 1, got '{flags[genres.index(bad)]}'",
                             file=str(path), line=number, field=bad)
        release = parts[2].strip()
        date = None
        if release:
            try:
                date = _dt.datetime.strptime(release, "%d-%b-%Y").date()
            except ValueError:
                raise InputError(f"release date '{release}' is not like 01-Jan-1995", file=str(path),
                                 line=number, field="release date") from None
        title = parts[1].strip()
        records.append({
            "item_id": parts[0].strip(),
            "title": title,
            "year": _year(title) or (date.year if date else None),  # the film's year, as in its title
            "release_date": date.isoformat() if date else None,
            "genres": [g for g, f in zip(genres, flags) if f.strip() == "1"],
            "imdb_url": parts[4].strip() or None,
        })
        lines.append(number)
    if not records:
        raise empty_file(path)
    return Table(path, records_frame(records), np.asarray(lines, dtype=np.int64), "ml-100k",
                 from_text=False, header_line=None)


def _ml1m_movies(path: Path, text: str, limit: int | None) -> Table:
    records, lines = [], []
    for number, line in _lines(text, limit):
        if line.count("::") < 2:
            raise InputError("expected MovieID::Title::Genres", file=str(path), line=number)
        movie_id, rest = line.split("::", 1)
        title, genres = rest.rsplit("::", 1)
        records.append({"item_id": movie_id.strip(), "title": title.strip(), "year": _year(title),
                        "genres": [g for g in genres.strip().split("|") if g]})
        lines.append(number)
    if not records:
        raise empty_file(path)
    return Table(path, records_frame(records), np.asarray(lines, dtype=np.int64), "ml-1m",
                 from_text=False, header_line=None)


def _ml_latest_movies(path: Path, encoding: str | None, limit: int | None, max_lines: int | None,
                      cancel: CancelToken) -> TaskGenerator[Table]:
    text = read_text(path, encoding, max_lines=max_lines)
    table = yield from read_delimited(path, text, ",", reader="ml-latest", limit=limit, cancel=cancel)
    cols = {c.lower(): c for c in table.columns}
    frame = table.frame
    ids = frame[cols["movieid"]].astype(str).str.strip()
    titles = frame[cols["title"]].astype(str).str.strip()
    genres = [[] if g.strip() in ("", "(no genres listed)") else [p for p in g.split("|") if p]
              for g in frame[cols["genres"]].astype(str)]
    data = {"item_id": ids.tolist(), "title": titles.tolist(), "year": [_year(t) for t in titles],
            "genres": genres}
    tags_path = path.with_name("tags.csv")
    if tags_path.exists():
        tags = yield from _ml_latest_tags(tags_path, encoding, cancel)
        data["tags"] = [tags.get(i, []) for i in data["item_id"]]
        table.merged.append(tags_path)
        table.notes.append(f"{tags_path.name} (beside {path.name}) is merged into the items as their 'tags' "
                           f"field ({sum(len(v) for v in tags.values())} distinct tags on {len(tags)} movies): "
                           "it needs no import of its own, and it is not a query log")
    extra = [c for c in table.columns if c.lower() not in ("movieid", "title", "genres")]
    for column in extra:
        data[column] = frame[column].tolist()
    table.frame = pd.DataFrame({k: pd.Series(v, dtype=object) for k, v in data.items()})
    table.column_types = {c: "str" for c in extra}
    table.from_text = False
    return table


def _ml_latest_tags(path: Path, encoding: str | None, cancel: CancelToken) -> TaskGenerator[dict[str, list[str]]]:
    """tags.csv -> {movieId: [tag, ...]}: distinct per movie (case-insensitive), in file order."""
    text = read_text(path, encoding)
    table = yield from read_delimited(path, text, ",", reader="csv", cancel=cancel)
    cols = {c.lower(): c for c in table.columns}
    if "movieid" not in cols or "tag" not in cols:
        raise InputError(f"expected columns movieId and tag, found {table.columns}", file=str(path), line=1)
    out: dict[str, list[str]] = {}
    seen: dict[str, set[str]] = {}
    for movie, tag in zip(table.frame[cols["movieid"]].astype(str).str.strip(), table.frame[cols["tag"]].astype(str)):
        tag = tag.strip()
        if not tag:
            continue
        key = tag.lower()
        if key not in seen.setdefault(movie, set()):
            seen[movie].add(key)
            out.setdefault(movie, []).append(tag)
    return out
