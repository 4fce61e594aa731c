"""Task cards, data loading, stratified sampling and the errors users see."""

from __future__ import annotations

import json
import sys
import types
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

from mop_bench.data import (
    TASKS,
    DataError,
    TaskCard,
    draw_contexts,
    format_summary,
    load_card,
    load_task,
    render_request,
    resolve_task,
    task_summary,
)
from mop_bench.data._card import CLEANUPS
from mop_bench.data._sample import allocate, rng_for, stratified_draw_with_cycles
from mop_bench.registry import UnknownNameError
from mop_bench.spec import DataSpec

MIRRORS = Path("/work/shared/data")
needs_mirrors = pytest.mark.skipif(not MIRRORS.is_dir(), reason="no data mirrors here")

CARD_YAML = """\
name: toy
version: "1"
description: toy reviews
citation: none
mirror_dir: toy
splits: {train: train.parquet, test: test.parquet}
text_column: text
label_column: label
label_names: [negative, positive]
context_fields: [label_name, stars]
context_template: "a {label_name} review, {stars} stars"
request_template: "Please write {context}."
"""


def _frame(n: int, pos_share: float, offset: int = 0) -> pd.DataFrame:
    n_pos = round(n * pos_share)
    labels = [1] * n_pos + [0] * (n - n_pos)
    return pd.DataFrame(
        {
            "text": [f"review number {offset + i} <br />end" for i in range(n)],
            "label": labels,
            "stars": [5 if lab else 1 for lab in labels],
        }
    )


@pytest.fixture
def toy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> TaskCard:
    """A mirror directory with a 75%-positive train split and a card pointing at it."""
    (tmp_path / "data" / "toy").mkdir(parents=True)
    _frame(400, 0.75).to_parquet(tmp_path / "data" / "toy" / "train.parquet")
    _frame(200, 0.75, offset=1000).to_parquet(tmp_path / "data" / "toy" / "test.parquet")
    card_path = tmp_path / "toy.yaml"
    card_path.write_text(CARD_YAML)
    monkeypatch.setenv("MOP_BENCH_DATA_DIR", str(tmp_path / "data"))
    return load_card(card_path)


def _label_share(examples: list, label: int = 1) -> float:
    return sum(ex.label == label for ex in examples) / len(examples)


# ----------------------------------------------------------------- sampling


def test_allocate_is_proportional_and_exact() -> None:
    quotas = allocate([1185, 3299], 500)
    assert sum(quotas) == 500
    assert quotas == [132, 368]  # 500 * 1185 / 4484 = 132.1
    assert allocate([1, 1, 1], 2) == [1, 1, 0]  # ties go to the earlier label


def test_pool_and_golden_keep_the_label_mix(toy: TaskCard) -> None:
    data = load_task(toy, DataSpec(pool_size=100, golden_size=40), seed=3)
    assert len(data.pool) == 100 and len(data.golden) == 40
    assert _label_share(data.pool) == 0.75
    assert _label_share(data.golden) == 0.75
    assert _label_share(data.heldout) == 0.75  # 300 - 75 of 400-100


def test_sampling_is_deterministic_per_seed(toy: TaskCard) -> None:
    spec = DataSpec(pool_size=50, golden_size=30)
    a, b, c = (load_task(toy, spec, seed=s) for s in (1, 1, 2))
    uids = lambda d: ([e.uid for e in d.pool], [e.uid for e in d.golden])  # noqa: E731
    assert uids(a) == uids(b)
    assert a.data_hash == b.data_hash
    assert uids(a) != uids(c)
    assert a.data_hash != c.data_hash
    ctx = lambda d, s: [(x.index, x.text, x.label) for x in draw_contexts(d, 25, s)]  # noqa: E731
    assert ctx(a, 7) == ctx(b, 7)
    assert ctx(a, 7) != ctx(a, 8)


def test_pool_golden_heldout_do_not_overlap(toy: TaskCard) -> None:
    data = load_task(toy, DataSpec(pool_size=60, golden_size=50), seed=0)
    pool, golden, held = ({e.uid for e in s} for s in (data.pool, data.golden, data.heldout))
    assert not pool & held and not pool & golden and not held & golden
    assert len(pool | held) == 400  # the whole pool split, every row once
    assert all(u.startswith("train:") for u in pool | held)
    assert all(u.startswith("test:") for u in golden)


def test_size_above_split_takes_everything(toy: TaskCard, caplog) -> None:
    data = load_task(toy, DataSpec(pool_size=10_000, golden_size=5), seed=0)
    assert len(data.pool) == 400 and data.heldout == []
    assert "exceeds the 400 available rows" in caplog.text


def test_examples_carry_fields_context_and_cleaned_text(toy: TaskCard) -> None:
    data = load_task(toy, DataSpec(pool_size=10, golden_size=10), seed=0)
    ex = data.pool[0]
    row = int(ex.uid.split(":")[1])
    assert ex.fields == {
        "label_name": "positive" if ex.label else "negative",
        "stars": ex.fields["stars"],
    }
    assert ex.context == f"a {ex.fields['label_name']} review, {ex.fields['stars']} stars"
    assert ex.text == f"review number {row} <br />end"  # no cleanup listed on this card
    assert data.sources["train"].endswith("toy/train.parquet")


def test_contexts_follow_the_golden_mix_and_cycle(toy: TaskCard) -> None:
    data = load_task(toy, DataSpec(pool_size=10, golden_size=20), seed=0)
    contexts = draw_contexts(data, 100, seed=0)  # more than the 20 golden rows
    assert [c.index for c in contexts] == list(range(100))
    assert Counter(c.label for c in contexts) == {1: 75, 0: 25}
    # 100 draws over 20 rows: every row is used exactly 5 times (no row repeats
    # before all rows of its label have been used)
    rows = stratified_draw_with_cycles([1] * 15 + [0] * 5, 100, rng_for(0, "contexts"))
    assert set(Counter(rows).values()) == {5}
    assert render_request(data.card, contexts[0].text) == f"Please write {contexts[0].text}."


# ----------------------------------------------------------------- errors


def test_missing_mirror_file_says_where_and_how(toy: TaskCard, tmp_path: Path) -> None:
    (tmp_path / "data" / "toy" / "test.parquet").unlink()
    with pytest.raises(FileNotFoundError) as err:
        load_task(toy, DataSpec(), seed=0)
    msg = str(err.value)
    assert str(tmp_path / "data" / "toy" / "test.parquet") in msg
    assert "MOP_BENCH_DATA_DIR" in msg and "--data-dir" in msg


def test_hub_failure_is_wrapped(toy: TaskCard, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = types.ModuleType("datasets")

    def load_dataset(*args, **kwargs):
        raise ConnectionError("offline")

    fake.load_dataset = load_dataset  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "datasets", fake)
    monkeypatch.delenv("MOP_BENCH_DATA_DIR")
    card = TASKS.get("yelp")
    with pytest.raises(FileNotFoundError) as err:
        load_task(card, DataSpec(), seed=0)
    msg = str(err.value)
    assert "fancyzhx/yelp_polarity" in msg and "offline" in msg
    assert "MOP_BENCH_DATA_DIR" in msg and "yelp/train.parquet" in msg


@pytest.mark.parametrize(
    ("column", "value", "expected"),
    [
        ("text", "   ", ["row 7 (0-based)", "'text'", "empty"]),
        ("label", 5, ["row 7", "'label'", "5", "0='negative'", "1='positive'"]),
        ("label", -1, ["row 7", "'label'", "-1"]),
        ("stars", None, ["row 7", "'stars'", "missing"]),
    ],
)
def test_bad_rows_name_file_row_and_field(
    toy: TaskCard, tmp_path: Path, column: str, value: object, expected: list[str]
) -> None:
    frame = _frame(20, 0.5).astype({"label": object, "stars": object})
    frame.loc[7, column] = value
    path = tmp_path / "data" / "toy" / "train.parquet"
    frame.to_parquet(path)
    with pytest.raises(DataError) as err:
        load_task(toy, DataSpec(), seed=0)
    msg = str(err.value)
    assert str(path) in msg
    for part in expected:
        assert part in msg


def test_missing_column_lists_the_columns(toy: TaskCard, tmp_path: Path) -> None:
    path = tmp_path / "data" / "toy" / "test.parquet"
    _frame(10, 0.5).rename(columns={"stars": "rating"}).to_parquet(path)
    with pytest.raises(DataError, match=r"column 'stars' not found.*text, label, rating") as err:
        load_task(toy, DataSpec(), seed=0)
    assert str(path) in str(err.value)


def test_unreadable_file_is_named(toy: TaskCard, tmp_path: Path) -> None:
    path = tmp_path / "data" / "toy" / "train.parquet"
    path.write_bytes(b"this is not parquet")
    with pytest.raises(DataError, match="cannot read parquet file") as err:
        load_task(toy, DataSpec(), seed=0)
    assert str(path) in str(err.value)


def test_unknown_task_suggests_a_name() -> None:
    with pytest.raises(UnknownNameError, match=r"did you mean 'yelp'"):
        resolve_task("yelpp")


def test_card_validation_errors(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(CARD_YAML.replace("text_column:", "text_colum:"))
    with pytest.raises(
        ValueError, match=r"c.yaml: unknown key 'text_colum' \(did you mean 'text_column'"
    ):
        load_card(path)
    path.write_text(CARD_YAML.replace("Please write {context}.", "Please write a review."))
    with pytest.raises(ValueError, match=r"c.yaml: request_template must use .*\{context\}"):
        load_card(path)
    path.write_text(CARD_YAML.replace("{stars} stars", "{stars} stars in {city}"))
    with pytest.raises(ValueError, match=r"context_template uses 'city'"):
        load_card(path)
    path.write_text(CARD_YAML.replace("{stars} stars", "{stars stars"))
    with pytest.raises(ValueError, match=r"c.yaml: context_template: "):
        load_card(path)
    path.write_text(CARD_YAML + "text_cleanup: [html_break]\n")
    with pytest.raises(ValueError, match=r"did you mean 'html_breaks'"):
        load_card(path)


# ----------------------------------------------------------------- user data


def _write(frame: pd.DataFrame, path: Path) -> Path:
    if path.suffix == ".csv":
        frame.to_csv(path, index=False)
    elif path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in frame.to_dict("records")))
    else:
        frame.to_parquet(path)
    return path


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_user_data_files(tmp_path: Path, suffix: str) -> None:
    frame = pd.DataFrame(
        {"body": [f"text {i}, with a comma" for i in range(90)], "y": ["pos", "neg", "pos"] * 30}
    )
    path = _write(frame, tmp_path / f"mine{suffix}")
    card = resolve_task("", data_file=str(path), text_column="body", label_column="y")
    assert card.label_names == ("neg", "pos")
    data = load_task(card, DataSpec(pool_size=15, golden_size=1000), seed=0)
    assert len(data.golden) == 45  # half the file, the card's fixed partition
    assert len(data.pool) + len(data.heldout) == 45
    assert round(_label_share(data.golden), 2) == round(_label_share(data.pool), 2) == 0.67
    assert data.pool[0].context in {'a text labelled "pos"', 'a text labelled "neg"'}
    other = load_task(card, DataSpec(pool_size=15, golden_size=1000), seed=9)
    assert {e.uid for e in other.golden} == {e.uid for e in data.golden}  # fixed partition


def test_user_file_without_labels_and_path_as_task(tmp_path: Path) -> None:
    path = _write(pd.DataFrame({"text": [f"note {i}" for i in range(30)]}), tmp_path / "n.csv")
    card = resolve_task(str(path))
    assert card.label_column is None and card.name == "n"
    data = load_task(card, DataSpec(pool_size=5, golden_size=5), seed=0)
    assert {e.context for e in data.pool} == {"a text"}
    assert all(c.label is None for c in draw_contexts(data, 8, seed=0))


def test_user_file_errors_name_file_and_row(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text('text,label\nfine,a\n"",b\n')
    card = resolve_task("", data_file=str(path))
    with pytest.raises(DataError, match=r"bad.csv: line 3: field 'text' is empty"):
        load_task(card, DataSpec(), seed=0)
    jsonl = tmp_path / "bad.jsonl"
    jsonl.write_text('{"text": "a"}\n{"text": \n')
    with pytest.raises(DataError, match=r"bad.jsonl: line 2 is not valid JSON"):
        resolve_task("", data_file=str(jsonl))
    with pytest.raises(DataError, match=r"column 'body' not found.*columns present: text, label"):
        resolve_task("", data_file=str(path), text_column="body")


def test_bundled_card_applied_to_user_file(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "text": [f"review {i}" for i in range(40)],
            "label": [0, 1] * 20,
            "category": ["Bars"] * 40,
            "stars": [1, 5] * 20,
        }
    )
    path = _write(frame, tmp_path / "reviews.parquet")
    card = resolve_task("yelp", data_file=str(path))
    data = load_task(card, DataSpec(pool_size=4, golden_size=4), seed=0)
    assert data.golden[0].context.endswith("in the Bars category, rating it 1 out of 5 stars") or (
        data.golden[0].context.endswith("rating it 5 out of 5 stars")
    )


def test_label_outside_a_cards_names_in_user_csv(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_text("text,label,category,stars\ngood,positive,Bars,5\nmeh,neutral,Bars,3\n")
    card = resolve_task("yelp", data_file=str(path))
    with pytest.raises(
        DataError, match=r"r.csv: line 3: field 'label' has value 'neutral'.*'negative'"
    ):
        load_task(card, DataSpec(), seed=0)


def test_cleanups() -> None:
    assert CLEANUPS["html_breaks"]("a<br />b<BR>c") == "a\nb\nc"
    ag = CLEANUPS["agnews_entities"]("Valve #39;s  quot;game quot; is\\out")
    assert CLEANUPS["whitespace"](ag) == 'Valve\'s "game" is out'


# ----------------------------------------------------------------- real mirrors


def test_bundled_cards_are_registered() -> None:
    assert TASKS.names() == ["ag_news", "imdb", "yelp"]
    for name in TASKS.names():
        card = TASKS.get(name)
        assert card.citation and card.hub_id and card.mirror_dir == name


@needs_mirrors
def test_real_yelp_keeps_its_label_mix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOP_BENCH_DATA_DIR", str(MIRRORS))
    data = load_task(TASKS.get("yelp"), DataSpec(pool_size=500, golden_size=1000), seed=0)
    assert abs(_label_share(data.pool) - 3299 / 4484) < 0.002
    assert abs(_label_share(data.golden) - 3314 / 4455) < 0.002
    contexts = draw_contexts(data, 300, seed=0)
    assert abs(_label_share(contexts) - _label_share(data.golden)) < 0.004
    assert "category" in contexts[0].text and "out of 5 stars" in contexts[0].text
    # the literature baselines' balanced prior: equal labels, each a golden context
    balanced = draw_contexts(data, 300, seed=0, label_prior="balanced")
    assert _label_share(balanced) == 0.5
    golden = {(e.context, e.label) for e in data.golden}
    assert all((c.text, c.label) in golden for c in balanced)
    assert balanced == draw_contexts(data, 300, seed=0, label_prior="balanced")


@needs_mirrors
def test_real_imdb_is_cleaned_and_summarised(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOP_BENCH_DATA_DIR", str(MIRRORS))
    card = TASKS.get("imdb")
    data = load_task(card, DataSpec(pool_size=200, golden_size=200), seed=0)
    assert not any("<br" in e.text for e in data.pool + data.golden)
    assert len(data.heldout) == 25_000 - 200
    summary = task_summary(card)
    assert summary["found"] is True
    assert summary["splits"]["test"]["label_counts"] == {"negative": 12500, "positive": 12500}


def test_user_card_with_files_next_to_it(tmp_path: Path) -> None:
    frame = pd.DataFrame({"review": [f"r{i}" for i in range(12)], "stars": [1, 5, 5] * 4})
    _write(frame, tmp_path / "a.jsonl")
    _write(frame, tmp_path / "b.jsonl")
    (tmp_path / "mine.yaml").write_text(
        "splits: {train: a.jsonl, test: b.jsonl}\n"
        "text_column: review\nlabel_column: stars\nlabel_names: ['1', '5']\n"
        "context_template: 'a {label_name}-star review'\n"
    )
    card = resolve_task(str(tmp_path / "mine.yaml"))
    assert card.name == "mine" and card.context_fields == ("label_name",)
    data = load_task(card, DataSpec(pool_size=3, golden_size=6), seed=0)
    assert Counter(e.context for e in data.golden) == {"a 5-star review": 4, "a 1-star review": 2}
    assert sorted(e.label for e in data.pool) == [0, 1, 1]
    summary = task_summary(card)
    assert summary["found"] and summary["splits"]["test"]["label_counts"] == {"1": 4, "5": 8}
    assert "12 rows (1 4, 5 8)" in format_summary(summary)


def test_summary_reports_missing_data(toy: TaskCard, tmp_path: Path) -> None:
    (tmp_path / "data" / "toy" / "train.parquet").unlink()
    summary = task_summary(toy)
    assert summary["found"] is False
    assert summary["splits"]["train"] == {
        "source": str(tmp_path / "data" / "toy" / "train.parquet"),
        "found": False,
    }
    assert summary["splits"]["test"]["label_counts"] == {"negative": 50, "positive": 150}
