"""How search queries are generated: :class:`QuerySpec`, its presets and its checks.

The spec is stored as the ``protocol`` of every generated row (:mod:`.queries`); the three
generators that read it are in :mod:`.query_methods`.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Mapping

from ..errors import SemidError


METHODS = ("known-item", "category-path", "template")


@dataclass(frozen=True)
class QuerySpec:
    """How queries are generated (stored as the ``protocol`` of every generated row).

    Attributes
    ----------
    method
        ``known-item``, ``category-path`` or ``template``.
    per_item, test_per_item
        Training and test queries per item. An item whose text cannot give that many distinct
        queries gets fewer; their number is reported (``items_short``), never padded with copies.
    seed
        Seeds every random draw: the same spec on the same catalogue gives the same queries.
    fields
        Item fields to use. known-item: the text fields terms are drawn from (default: every
        text field but the id); template: the modifier fields (default: brand, price and any
        other short text field).
    exclude_title
        known-item: leave out every word that occurs in the item's title.
    mean_length, min_length, max_length
        known-item: query length ~ Poisson(mean_length), clipped to [min_length, max_length].
    noise
        known-item: probability that a term is drawn from the whole catalogue's term
        distribution instead of the item's (Azzopardi et al.'s noisy query model).
    category_field
        category-path / template: the list field holding the category path, coarse to fine.
    price_field
        template: the numeric field turned into price bands.
    """

    method: str = "known-item"
    per_item: int = 4
    test_per_item: int = 2
    seed: int = 0
    fields: tuple[str, ...] = ()
    exclude_title: bool = False
    mean_length: float = 3.0
    min_length: int = 2
    max_length: int = 6
    noise: float = 0.0
    category_field: str = "categories"
    price_field: str = "price"


PRESETS: dict[str, dict[str, Any]] = {
    # a few queries per item: enough to fine-tune an encoder on a laptop
    "laptop": {"per_item": 4, "test_per_item": 2},
    # the Spotify paper's protocol: 10 train + 10 test queries per item, never the title
    "paper": {"per_item": 10, "test_per_item": 10, "exclude_title": True},
}


def make_spec(method: str = "known-item", *, preset: str | None = None,
              overrides: Mapping[str, Any] | None = None) -> QuerySpec:
    """A :class:`QuerySpec` from a preset plus overrides (values may be strings, as from a CLI).

    Raises
    ------
    SemidError
        Unknown method, preset or field, or a value that does not parse or is out of range.
    """
    if method not in METHODS:
        raise SemidError(f"unknown query generator '{method}'; choose one of {', '.join(METHODS)}")
    values: dict[str, Any] = {"method": method}
    if preset is not None:
        if preset not in PRESETS:
            raise SemidError(f"unknown query preset '{preset}'; choose one of {', '.join(PRESETS)}")
        values.update(PRESETS[preset])
    types = {f.name: f.type for f in fields(QuerySpec)}
    for key, value in (overrides or {}).items():
        key = key.replace("-", "_")
        if key not in types:
            raise SemidError(f"unknown query setting '{key}'; known: {', '.join(sorted(types))}")
        values[key] = _coerce(key, types[key], value)
    spec = QuerySpec(**values)
    _validate(spec)
    return spec


def _coerce(key: str, kind: Any, value: Any) -> Any:
    kind = str(kind)
    try:
        if "tuple" in kind:
            if isinstance(value, str):
                return tuple(v.strip() for v in value.split(",") if v.strip())
            return tuple(value)
        if kind.startswith("bool") and isinstance(value, str):
            if value.lower() in ("1", "true", "yes", "on"):
                return True
            if value.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(value)
        if kind.startswith("int"):
            return int(value)
        if kind.startswith("float"):
            return float(value)
        return value
    except (TypeError, ValueError):
        raise SemidError(f"query setting '{key}': cannot read {value!r} as {kind}") from None


def _validate(spec: QuerySpec) -> None:
    if spec.per_item < 1 or spec.test_per_item < 0:
        raise SemidError("queries per item: need --per-item >= 1 and --test-per-item >= 0")
    if spec.per_item + spec.test_per_item > 100:
        raise SemidError("at most 100 queries per item (train + test)")
    if not 1 <= spec.min_length <= spec.max_length:
        raise SemidError("query length: need 1 <= min_length <= max_length")
    if spec.mean_length <= 0:
        raise SemidError("query length: mean_length must be positive")
    if not 0.0 <= spec.noise < 1.0:
        raise SemidError("noise must be in [0, 1)")


def describe_spec(spec: QuerySpec) -> str:
    parts = [f"{spec.method}", f"{spec.per_item} train + {spec.test_per_item} test per item", f"seed {spec.seed}"]
    if spec.exclude_title:
        parts.append("no title words")
    return ", ".join(parts)
