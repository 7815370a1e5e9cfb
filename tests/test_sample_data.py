"""The bundled sample catalogue: reproducible, consistent, and learnable.

``sample_data/`` is written by ``scripts/make_sample_data.py``; these tests regenerate it and
compare bytes, check the files' integrity, and check that the user histories carry real
sequential signal (a first-order Markov chain clearly beats popularity), because later parts
of the project train and evaluate recommenders on this data.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "sample_data"
SCRIPT = ROOT / "scripts" / "make_sample_data.py"
FILES = ("items.jsonl", "interactions.csv", "queries.csv")


@pytest.fixture(scope="module")
def items() -> list[dict]:
    with open(SAMPLE / "items.jsonl", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


@pytest.fixture(scope="module")
def interactions() -> list[dict]:
    with open(SAMPLE / "interactions.csv", encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def queries() -> list[dict]:
    with open(SAMPLE / "queries.csv", encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def histories(interactions) -> dict[str, list[str]]:
    """Item sequences per user, in file order (the file is sorted by user, then time)."""
    seqs: dict[str, list[str]] = defaultdict(list)
    for row in interactions:
        seqs[row["user_id"]].append(row["item_id"])
    return dict(seqs)


# --------------------------------------------------------------------------- determinism


def _generate(out: Path, *extra: str) -> str:
    result = subprocess.run([sys.executable, str(SCRIPT), "--out", str(out), *extra],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_regenerating_gives_byte_identical_files(tmp_path):
    stdout = _generate(tmp_path)
    for name in FILES:
        assert (tmp_path / name).read_bytes() == (SAMPLE / name).read_bytes(), (
            f"{name} differs from the committed sample_data/; rerun scripts/make_sample_data.py"
        )
    assert "interactions:" in stdout and "items: 3000" in stdout


def test_another_seed_gives_another_catalogue(tmp_path):
    _generate(tmp_path, "--seed", "7")
    assert (tmp_path / "items.jsonl").read_bytes() != (SAMPLE / "items.jsonl").read_bytes()
    assert (tmp_path / "interactions.csv").read_bytes() != (SAMPLE / "interactions.csv").read_bytes()


def test_sample_data_stays_small():
    total = sum((SAMPLE / name).stat().st_size for name in FILES)
    assert total < 3 * 1024 * 1024, f"sample_data/ is {total / 2**20:.1f} MiB"


# --------------------------------------------------------------------------- integrity


def test_items_are_well_formed(items):
    ids = [it["item_id"] for it in items]
    assert len(ids) == len(set(ids)) and 2500 <= len(ids) <= 3500
    for it in items:
        assert set(it) >= {"item_id", "title", "brand", "categories", "price", "description"}
        assert set(it) <= {"item_id", "title", "brand", "categories", "price", "description", "color", "material"}
        assert 4 <= len(it["title"].split()) <= 12, it["title"]
        assert isinstance(it["categories"], list) and len(it["categories"]) == 3
        assert isinstance(it["price"], float) and 0 < it["price"] < 1000
        assert it["description"].endswith(".") and len(it["description"].split()) <= 16
        if "color" in it:
            assert it["color"] in it["title"]
    titles = [it["title"] for it in items]
    assert len(set(titles)) == len(titles)
    # most titles start with the brand, as in real shops, but not all of them
    brand_first = sum(it["title"].startswith(it["brand"]) for it in items) / len(items)
    assert 0.55 <= brand_first <= 0.8
    # a hierarchy worth looking at in a SID tree: departments > categories > product types
    assert len({it["categories"][0] for it in items}) == 8
    assert 25 <= len({tuple(it["categories"][:2]) for it in items}) <= 48
    assert len({tuple(it["categories"]) for it in items}) >= 100
    assert len({it["brand"] for it in items}) >= 30
    # some brands span two departments
    depts_of_brand = defaultdict(set)
    for it in items:
        depts_of_brand[it["brand"]].add(it["categories"][0])
    assert sum(len(d) > 1 for d in depts_of_brand.values()) >= 4


def test_interactions_reference_items_and_are_ordered(items, interactions, histories):
    known = {it["item_id"] for it in items}
    assert all(row["item_id"] in known for row in interactions)
    assert 25_000 <= len(interactions) <= 40_000
    assert 1500 <= len(histories) <= 2500
    lengths = [len(s) for s in histories.values()]
    assert min(lengths) >= 5 and max(lengths) <= 60
    assert sorted(lengths)[len(lengths) // 2] < sum(lengths) / len(lengths)  # skewed: median < mean
    # users are contiguous and each user's timestamps never decrease; ties are rare
    users_in_order = [row["user_id"] for row in interactions]
    changes = sum(a != b for a, b in zip(users_in_order, users_in_order[1:]))
    assert changes == len(histories) - 1
    ties = 0
    times = defaultdict(list)
    for row in interactions:
        times[row["user_id"]].append(int(row["timestamp"]))
    for ts in times.values():
        assert all(a <= b for a, b in zip(ts, ts[1:]))
        ties += sum(a == b for a, b in zip(ts, ts[1:]))
    assert ties < 0.01 * len(interactions)
    all_ts = [t for ts in times.values() for t in ts]
    span_days = (max(all_ts) - min(all_ts)) / 86400
    assert 600 <= span_days <= 740
    # no repeated purchases of one item by one user
    assert all(len(set(s)) == len(s) for s in histories.values())


def test_queries_reference_items_and_split_cleanly(items, queries):
    known = {it["item_id"] for it in items}
    assert {q["split"] for q in queries} == {"train", "test"}
    by_item = defaultdict(lambda: {"train": set(), "test": set()})
    for q in queries:
        assert q["item_id"] in known
        assert 2 <= len(q["query"].split()) <= 7, q["query"]
        assert q["query"] == q["query"].lower()
        by_item[q["item_id"]][q["split"]].add(q["query"])
    # a train and a test query for the same item are never the same string
    assert all(not (s["train"] & s["test"]) for s in by_item.values())
    with_train = sum(bool(s["train"]) for s in by_item.values())
    test_only = sum(bool(s["test"]) and not s["train"] for s in by_item.values())
    assert with_train >= 0.5 * len(known)
    assert test_only >= 100
    # queries paraphrase: most test queries are not contained verbatim in the title
    titles = {it["item_id"]: it["title"].lower() for it in items}
    verbatim = sum(q["query"] in titles[q["item_id"]] for q in queries if q["split"] == "test")
    assert verbatim < 0.2 * sum(q["split"] == "test" for q in queries)


# --------------------------------------------------------------------------- learnability


def _leave_last_out(histories):
    train = {u: s[:-1] for u, s in histories.items()}
    target = {u: s[-1] for u, s in histories.items()}
    return train, target


def _top(candidates, seen, k=10):
    out = []
    for c in candidates:
        if c not in seen and c not in out:
            out.append(c)
            if len(out) == k:
                break
    return out


def next_item_recalls(histories) -> tuple[float, float]:
    """Recall@10 of popularity and of a first-order item->next-item Markov chain.

    Leave-last-out: each user's last item is the target; both models are fitted on the
    earlier items only, and items the user already has are not recommended (nobody in the
    sample buys the same item twice).
    """
    train, target = _leave_last_out(histories)
    popularity = [i for i, _ in Counter(i for s in train.values() for i in s).most_common()]
    transitions: dict[str, Counter] = defaultdict(Counter)
    for s in train.values():
        for a, b in zip(s, s[1:]):
            transitions[a][b] += 1
    hits_pop = hits_markov = 0
    for user, seq in train.items():
        seen = set(seq)
        hits_pop += target[user] in _top(popularity, seen)
        following = [j for j, _ in transitions[seq[-1]].most_common()]
        hits_markov += target[user] in _top(following + popularity, seen)  # popularity back-off
    return hits_pop / len(train), hits_markov / len(train)


def test_markov_chain_clearly_beats_popularity(histories):
    pop, markov = next_item_recalls(histories)
    assert pop > 0.005  # popularity is a real (weak) signal: the catalogue has a popularity skew
    assert markov >= 3 * pop and markov - pop >= 0.08, (pop, markov)
    assert markov < 0.6  # ... but the next item is not trivially predictable


def test_next_category_is_predictable_from_the_last_one(items, histories):
    category = {it["item_id"]: tuple(it["categories"][:2]) for it in items}
    train, target = _leave_last_out(histories)
    counts = Counter(category[i] for s in train.values() for i in s)
    majority = counts.most_common(1)[0][0]
    transitions: dict[tuple, Counter] = defaultdict(Counter)
    for s in train.values():
        for a, b in zip(s, s[1:]):
            transitions[category[a]][category[b]] += 1
    hits_majority = sum(category[t] == majority for t in target.values()) / len(target)
    def predict(last: str) -> tuple:
        following = transitions[category[last]]
        return following.most_common(1)[0][0] if following else majority

    hits_transition = sum(category[target[u]] == predict(s[-1]) for u, s in train.items()) / len(target)
    assert hits_transition >= hits_majority + 0.3, (hits_majority, hits_transition)
    assert hits_transition < 0.95  # users do change category now and then
