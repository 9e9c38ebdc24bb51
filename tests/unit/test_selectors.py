"""Label selectors: Kubernetes' grammar, parsed strictly, matched in Python and in SQL alike."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from sqlalchemy import select

from berth.errors import InvalidArgument
from berth.service.selectors import (
    MAX_LENGTH,
    MAX_REQUIREMENTS,
    MAX_VALUES,
    SelectorError,
    from_label_filters,
    parse_selector,
)
from berth.store.db import Store
from berth.store.models import Volume

LABELS = {"app": "web", "tier": "front", "env": "prod", "app.kubernetes.io/name": "shop",
          "version": "1.2.3", "empty": "", "url": "https://example.com/x"}


@pytest.mark.parametrize(("text", "canonical"), [
    ("", ""),
    ("   ", ""),
    ("app=web", "app=web"),
    ("app==web", "app=web"),
    ("app = web", "app=web"),
    ("app!=db", "app!=db"),
    ("app", "app"),
    ("!app", "!app"),
    ("! app", "!app"),
    ("app=", "app="),
    ("app!=", "app!="),
    ("env in (a,b)", "env in (a,b)"),
    ("env in(a, b ,c)", "env in (a,b,c)"),
    ("env  notin  ( a )", "env notin (a)"),
    ("env in (a,a,b)", "env in (a,b)"),
    ("app=web,tier!=db,env in (a,b),env notin (c),key,!key",
     "app=web,tier!=db,env in (a,b),env notin (c),key,!key"),
    ("app.kubernetes.io/name=shop", "app.kubernetes.io/name=shop"),
    ("example.com/some_key-1=v_1.2-x", "example.com/some_key-1=v_1.2-x"),
    ("url=https://example.com/x", "url=https://example.com/x"),
    ("mail=me@example.com", "mail=me@example.com"),
    ("in=x", "in=x"),
    ("notin", "notin"),
    ("a=in", "a=in"),
    ("A1=B2", "A1=B2"),
    ("a\t=\tb", "a=b"),
])
def test_good_selectors_parse_to_their_canonical_form(text: str, canonical: str) -> None:
    parsed = parse_selector(text)
    assert str(parsed) == canonical
    assert parse_selector(str(parsed)) == parsed


def test_none_is_the_empty_selector_and_it_selects_everything() -> None:
    sel = parse_selector(None)
    assert not sel
    assert sel.matches({}) and sel.matches(LABELS) and sel.matches(None)


@pytest.mark.parametrize(("text", "position", "words"), [
    ("a=b,", 4, "expected a label key"),
    (",a", 0, "expected a label key"),
    ("a,,b", 2, "expected a label key"),
    ("=b", 0, "expected a label key"),
    ("!", 1, "expected a label key"),
    ("!=a", 0, "expected a label key"),
    ("!a=b", 2, "expected ','"),
    ("!!a", 1, "expected a label key"),
    ("a b", 2, "after the key 'a'"),
    ("a in", 4, "expected '('"),
    ("a in b", 5, "expected '('"),
    ("a in ()", 6, "is empty"),
    ("a in (b", 7, "expected ',' or ')'"),
    ("a in (b c)", 8, "expected ',' or ')'"),
    ("a in (b,)", 8, "expected a value"),
    ("a in (,b)", 6, "expected a value"),
    ("a notin (b))", 11, "expected ','"),
    ("a=b=c", 3, "expected ','"),
    ("a=b c", 4, "expected ','"),
    ("a=(b)", 2, "expected a value"),
    ("a=!b", 2, "expected a value"),
    ("a>1", 1, "unsupported operator '>'"),
    ("a<1", 1, "unsupported operator '<'"),
    ("(a)", 0, "expected a label key"),
    ("-a=b", 0, "invalid label key"),
    ("a$b=c", 0, "invalid label key"),
    ("é=b", 0, "invalid label key"),
    ("a=\"b\"", 2, "invalid label value"),
    ("a=b;c", 2, "invalid label value"),
    ("a='b'", 2, "invalid label value"),
    ("a=" + "v" * 256, 2, "invalid label value"),
    ("k" * 254, 0, "invalid label key"),
    ("a in (b,c$)", 8, "invalid label value"),
    ("app=web,,", 8, "expected a label key"),
])
def test_bad_selectors_name_the_problem_and_where(text: str, position: int, words: str) -> None:
    with pytest.raises(SelectorError) as err:
        parse_selector(text)
    assert err.value.position == position
    assert words in err.value.message
    assert f"at position {position}" in err.value.message
    assert isinstance(err.value, InvalidArgument) and err.value.status == 400


def test_bounds() -> None:
    with pytest.raises(SelectorError, match="longer than"):
        parse_selector("a" * (MAX_LENGTH + 1))
    parse_selector(",".join(f"k{i}" for i in range(MAX_REQUIREMENTS)))
    with pytest.raises(SelectorError, match="more than"):
        parse_selector(",".join(f"k{i}" for i in range(MAX_REQUIREMENTS + 1)))
    parse_selector(f"k in ({','.join(f'v{i}' for i in range(MAX_VALUES))})")
    with pytest.raises(SelectorError, match="values in one set"):
        parse_selector(f"k in ({','.join(f'v{i}' for i in range(MAX_VALUES + 1))})")


@pytest.mark.parametrize(("text", "expected"), [
    ("app=web", True),
    ("app==web", True),
    ("app=db", False),
    ("app!=db", True),
    ("app!=web", False),
    ("missing!=x", True),  # absent counts as "not equal", as in Kubernetes
    ("missing=x", False),
    ("app", True),
    ("missing", False),
    ("!missing", True),
    ("!app", False),
    ("env in (prod,staging)", True),
    ("env in (dev)", False),
    ("missing in (x)", False),
    ("env notin (dev)", True),
    ("env notin (prod)", False),
    ("missing notin (x)", True),
    ("empty=", True),
    ("empty", True),
    ("app=", False),
    ("missing=", False),
    ("app.kubernetes.io/name=shop", True),
    ("version=1.2.3", True),
    ("url=https://example.com/x", True),
    ("app=web,tier!=db,env in (prod),!legacy", True),
    ("app=web,tier=db", False),
    ("APP=web", False),  # keys are case-sensitive
    ("app=WEB", False),
])
def test_matching(text: str, expected: bool) -> None:
    assert parse_selector(text).matches(LABELS) is expected


def test_docker_label_filters_become_selectors() -> None:
    sel = from_label_filters(["app=web", "tier"])
    assert sel is not None and str(sel) == "app=web,tier"
    assert sel.matches(LABELS)
    assert from_label_filters(["a b=c"]) is None  # no label can have that key
    weird = from_label_filters(["note=hello world"])  # values are free text in filters
    assert weird is not None and weird.matches({"note": "hello world"})


def test_sql_and_python_agree(tmp_path: Path) -> None:
    """The same selector, evaluated by the store (JSON functions) and in Python."""
    store = Store(f"sqlite:///{tmp_path / 'b.db'}")
    rng = random.Random(7)
    keys, values = ["app", "tier", "a.b/c", "x"], ["web", "db", "", "1.0"]
    try:
        with store.session() as s:
            for i in range(200):
                labels = {k: rng.choice(values) for k in keys if rng.random() < 0.6}
                s.add(Volume(project_id="default", name=f"v{i}", driver="local", host="h",
                             labels=labels, created_at=float(i)))
        with store.session() as s:
            rows = s.scalars(select(Volume)).all()
        texts = ["app=web", "app!=web", "app", "!app", "app in (web,db)", "app notin (web)",
                 "a.b/c=", "a.b/c", "x=1.0,tier!=db", "app=web,!x", "tier notin (db,web),app",
                 "", "x in (1.0,)".replace(",)", ")")]
        for _ in range(40):
            k, v = rng.choice(keys), rng.choice(values[:2])
            texts.append(rng.choice([f"{k}={v}", f"{k}!={v}", k, f"!{k}", f"{k} in ({v},db)",
                                     f"{k} notin ({v})"]) + "," + rng.choice(keys))
        for text in texts:
            sel = parse_selector(text)
            with store.session() as s:
                q = select(Volume.name).where(sel.sql(lambda k: Volume.labels[k].as_string()))
                in_sql = set(s.scalars(q).all())
            in_python = {r.name for r in rows if sel.matches(r.labels)}
            assert in_sql == in_python, text
    finally:
        store.close()
