"""Semantic IDs: dedup level, SID strings, health figures, label fields and the SidIndex look-ups."""

import itertools
import math

import numpy as np
import pandas as pd
import pytest

from semid_studio.core.errors import InputError
from semid_studio.core.sids import (
    SidIndex,
    add_dedup_level,
    code_health,
    format_health,
    label_values,
    parse_sid,
    sid_string,
    sid_strings,
)


def test_dedup_level_numbers_each_collision_group_in_idx_order():
    semantic = np.array([[1, 2], [0, 5], [1, 2], [1, 2], [0, 5], [3, 3]])
    codes = add_dedup_level(semantic)
    np.testing.assert_array_equal(codes[:, :2], semantic)  # semantic codes are untouched
    assert codes[:, 2].tolist() == [0, 0, 1, 2, 1, 0]
    assert len({tuple(r) for r in codes}) == len(codes)


def test_dedup_level_on_many_items_is_unique_and_sized_to_the_largest_group():
    rng = np.random.default_rng(0)
    semantic = rng.integers(0, 6, size=(5000, 3))  # 216 tuples: many collisions
    codes = add_dedup_level(semantic)
    assert len(np.unique(codes, axis=0)) == len(codes)
    _, sizes = np.unique(semantic, axis=0, return_counts=True)
    assert codes[:, -1].max() + 1 == sizes.max()
    # brute force: the dedup code is the number of earlier items with the same tuple
    seen: dict[tuple, int] = {}
    for row, dedup in zip(map(tuple, semantic), codes[:, -1]):
        assert dedup == seen.get(row, 0)
        seen[row] = seen.get(row, 0) + 1
    assert add_dedup_level(np.zeros((0, 3), dtype=int)).shape == (0, 4)


def test_sid_strings_and_parse_round_trip():
    codes = np.array([[12, 200, 7, 0], [0, 0, 0, 3]])
    texts = sid_strings(codes)
    assert texts == ["<a_12><b_200><c_7><d_0>", "<a_0><b_0><c_0><d_3>"]
    assert sid_string(codes[0]) == texts[0]
    for row, text in zip(codes, texts):
        assert parse_sid(text) == tuple(row)
    assert parse_sid("<a_12><b_200>") == (12, 200)  # a prefix
    assert parse_sid(" <a_12> <b_200> ") == (12, 200)
    assert parse_sid("12,200") == (12, 200)
    assert parse_sid("12 200 / 7") == (12, 200, 7)


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "empty SID"),
        ("<a_1><c_2>", "token 2 is <c_2> but level 2 is written 'b'"),
        ("<a_1>junk", "expected tokens like <a_12><b_200>, found 'junk'"),
        ("<a_1> x <b_2>", "unexpected 'x'"),
        ("<a_x>", "expected tokens like"),
        ("12,-3", "'-3' is not a non-negative whole number"),
        ("twelve", "'twelve' is not a non-negative whole number"),
    ],
)
def test_parse_sid_rejects_garbage_with_a_clear_message(text, message):
    with pytest.raises(InputError) as info:
        parse_sid(text)
    assert message in str(info.value)
    assert "field 'sid'" in str(info.value)


def test_code_health_on_a_hand_made_example():
    # 6 items, 2 levels of K = 4, dedup level added
    semantic = np.array([[0, 1], [0, 1], [0, 2], [1, 3], [1, 3], [1, 3]])
    codes = add_dedup_level(semantic)
    x = np.array([[1.0, 0.0]] * 6)
    x_hat = np.array([[0.5, 0.0]] * 6)  # error 0.25 per item, norm 1 per item
    labels = np.array(["A", "A", "B", "C", "C", None], dtype=object)
    m = code_health(codes, 2, 4, x, x_hat, labels, "cat")
    lvl1, lvl2 = m["per_level"]
    assert (lvl1["used"], lvl1["usage"], lvl1["largest_code"]) == (2, 0.5, 3)
    assert lvl1["entropy_bits"] == pytest.approx(1.0)  # two codes, 3 items each
    p = np.array([2, 1, 3]) / 6
    assert lvl2["entropy_bits"] == pytest.approx(-(p * np.log2(p)).sum(), abs=1e-4)
    assert lvl2["max_entropy_bits"] == 2.0
    assert m["unique_share"] == pytest.approx(1 / 6)  # only (0, 2) is unique
    assert m["largest_collision_group"] == 3
    assert m["collision_groups"] == 2 and m["items_in_collisions"] == 5
    assert m["dedup_level_size"] == 3 and m["all_sids_unique"]
    assert m["relative_reconstruction_error"] == pytest.approx(0.25)
    # level-1 prefix 0: A, A, B -> majority A (2 of 3); prefix 1: C, C (None left out) -> 2 of 2
    assert m["purity"]["level_1"] == pytest.approx(4 / 5)
    # level-2 prefixes: (0,1) A A; (0,2) B; (1,3) C C -> all pure
    assert m["purity"]["level_2"] == pytest.approx(1.0)
    assert m["purity"]["labelled_items"] == 5 and m["purity"]["n_labels"] == 3
    text = format_health(m)
    assert "unique before dedup 16.7% of 6 items; largest collision group 3" in text
    assert "dedup level, size 3" in text and "level 1 0.800" in text
    assert "relative reconstruction error 0.2500" in text
    assert format_health({}) == "health: not measured"


def test_label_values_field_syntax():
    frame = pd.DataFrame(
        {
            "categories": [["Beauty", "Makeup", "Eyes"], ["Beauty", "Hair Care"], ["Beauty", "Makeup"], None],
            "brand": ["Acme", None, "Glow", float("nan")],
            "price": [1.5, 2.0, None, 3.0],
        },
        index=pd.RangeIndex(4, name="idx"),
    )
    assert label_values(frame, "categories[1]").tolist() == ["Makeup", "Hair Care", "Makeup", None]
    assert label_values(frame, "categories[2]").tolist() == ["Eyes", None, None, None]
    assert label_values(frame, "categories[-1]").tolist() == ["Eyes", "Hair Care", "Makeup", None]
    # a bare list field = its first level that is not constant ("Beauty" everywhere is skipped)
    assert label_values(frame, "categories").tolist() == ["Makeup", "Hair Care", "Makeup", None]
    assert label_values(frame, "brand").tolist() == ["Acme", None, "Glow", None]
    with pytest.raises(InputError, match=r"field 'colour': unknown label field; the catalogue has \['brand'"):
        label_values(frame, "colour")
    with pytest.raises(InputError, match="cannot read label field 'categories\\[x'"):
        label_values(frame, "categories[x")
    with pytest.raises(InputError, match="needs a list field"):
        label_values(frame, "brand[1]")
    with pytest.raises(InputError, match="has no value for any item"):
        label_values(frame, "categories[7]")


def _brute_children(codes, prefix):
    depth = len(prefix)
    rows = [tuple(r) for r in codes if tuple(r[:depth]) == tuple(prefix)]
    counts: dict[int, int] = {}
    for r in rows:
        if depth < codes.shape[1]:
            counts[r[depth]] = counts.get(r[depth], 0) + 1
    return sorted(counts.items())


def test_sid_index_agrees_with_brute_force():
    rng = np.random.default_rng(3)
    codes = add_dedup_level(rng.integers(0, 5, size=(700, 3)))
    index = SidIndex(codes)
    prefixes = [()] + [p for depth in (1, 2, 3) for p in itertools.product(range(6), repeat=depth)][:400]
    for prefix in prefixes:
        assert index.children(prefix) == _brute_children(codes, prefix)
        expected = sorted(i for i in range(len(codes)) if tuple(codes[i, : len(prefix)]) == prefix)
        got = index.items(prefix)
        assert sorted(got.tolist()) == expected and index.count(prefix) == len(expected)
        # items come in SID order
        assert [tuple(codes[i]) for i in got] == sorted(tuple(codes[i]) for i in got)
    for i in (0, 17, 699):
        assert index.path(i) == tuple(codes[i])
        assert index.find(index.path(i)) == i
    assert index.find((9, 9, 9, 9)) is None
    assert index.children(tuple(codes[5])) == []  # a leaf
    with pytest.raises(IndexError):
        index.path(700)
    with pytest.raises(InputError, match="has 5 levels; these SIDs have 4"):
        index.items((0, 0, 0, 0, 0))
    prefixes2, counts2 = index.prefix_counts(2)
    brute = {}
    for r in codes:
        brute[tuple(r[:2])] = brute.get(tuple(r[:2]), 0) + 1
    assert [tuple(p) for p in prefixes2] == sorted(brute) and counts2.tolist() == [brute[k] for k in sorted(brute)]
    groups = index.collision_groups()
    by_tuple: dict[tuple, list[int]] = {}
    for i, r in enumerate(codes[:, :3]):
        by_tuple.setdefault(tuple(r), []).append(i)
    assert sorted(sorted(g.tolist()) for g in groups) == sorted(v for v in by_tuple.values() if len(v) > 1)


def test_sid_index_on_a_large_catalogue_is_array_based():
    rng = np.random.default_rng(1)
    codes = add_dedup_level(rng.integers(0, 256, size=(100_000, 3)))
    index = SidIndex(codes)
    top = index.children(())
    assert sum(n for _, n in top) == 100_000 and len(top) == 256
    code, n = top[10]
    assert len(index.items((code,))) == n
    assert math.isclose(sum(c for _, c in index.children((code,))), n)
