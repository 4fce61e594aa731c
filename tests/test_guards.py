"""Hostile and broken inputs (issue 12): the embedding cache verifies what it reads and
does not depend on batching, CSV cells cannot run formulas, credentials never reach a
record, task cards cannot reach outside their folder, settings are range-checked, and
each expected failure is one line that names its cause."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np
import pytest

from mop_bench import embed
from mop_bench.cli import main
from mop_bench.data import DataError, load_card, load_task, resolve_task
from mop_bench.overrides import field_paths
from mop_bench.runner import build_spec
from mop_bench.spec import DataSpec, EncoderSpec, LMSpec, RunSpec
from mop_bench.validate import RANGES, range_errors

# ------------------------------------------------------------------ item 3: the cache


class FakeST:
    """Stands in for a SentenceTransformer whose vectors depend on padding, as the real
    one's do (in the last bits): each vector is shifted by the batch's padded length."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def get_sentence_embedding_dimension(self) -> int:
        return 8

    def preprocess(self, texts) -> dict[str, np.ndarray]:
        """10 tokens of framing plus one per word: 1-word texts fall below
        `MIN_BATCHED_TOKENS` and are encoded alone."""
        lengths = [10 + len(t.split()) for t in texts]
        mask = np.zeros((len(texts), max(lengths)), dtype=np.int64)
        for i, n in enumerate(lengths):
            mask[i, :n] = 1
        return {"attention_mask": mask}

    def encode(self, texts, **kwargs) -> np.ndarray:
        self.calls.append(list(texts))
        padded = max(len(t.split()) for t in texts)
        out = np.zeros((len(texts), 8), dtype=np.float32)
        for i, t in enumerate(texts):
            seed = int.from_bytes(t.encode()[:8].ljust(8, b"\0"), "little")
            out[i] = np.random.default_rng(seed).normal(size=8) + 1e-3 * padded
        return out


def _encoder(tmp_path: Path) -> embed.Encoder:
    enc = embed.Encoder(EncoderSpec(model="fake-st"), cache=tmp_path / "cache", progress=False)
    enc._model = FakeST()
    return enc


TEXTS = ["one", "two words", "three words here", "a b c d", "x y", "z"]


def test_vectors_do_not_depend_on_which_texts_share_a_call(tmp_path: Path) -> None:
    fresh_enc = _encoder(tmp_path / "a")
    fresh = fresh_enc.encode(TEXTS)
    warm_enc = _encoder(tmp_path / "b")
    warm_enc.encode([*TEXTS[:2], "many more words in this one text"])  # part of the cache
    warm = warm_enc.encode(TEXTS)
    assert fresh.tobytes() == warm.tobytes()
    # Every model call held texts of one length (no padding); some held several.
    calls = warm_enc.model.calls + fresh_enc.model.calls
    assert all(len({len(t.split()) for t in call}) == 1 for call in calls)
    assert any(len(call) > 1 for call in calls)


def _shard(enc: embed.Encoder, text: str) -> Path:
    return enc._shard_path(embed._text_key(text))


def test_bad_shards_are_reported_dropped_and_recomputed(tmp_path: Path, caplog) -> None:
    enc = _encoder(tmp_path)
    good = enc.encode(TEXTS)
    key = embed._text_key(TEXTS[1])
    path = _shard(enc, TEXTS[1])
    valid = path.read_bytes()
    header_end = valid.index(b"\n", len(embed.SHARD_MAGIC)) + 1
    rng = np.random.default_rng(0)
    damaged = {
        "empty file": b"",
        "checksum mismatch": valid[:header_end] + rng.normal(size=8).astype("<f4").tobytes(),
        "bytes of vector": valid[:-4],
        "another text": embed.pack_shard(enc.identity, embed._text_key("other"), good[1]),
        "non-finite": embed.pack_shard(enc.identity, key, np.full(8, np.nan, dtype=np.float32)),
        "not a mop-bench embedding shard": np.random.default_rng(1).bytes(64),
    }
    for reason, blob in damaged.items():
        path.write_bytes(blob)
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="mop_bench.embed"):
            again = _encoder(tmp_path).encode(TEXTS)
        assert again.tobytes() == good.tobytes(), reason
        assert reason in caplog.text and str(path) in caplog.text, (reason, caplog.text)
        assert path.read_bytes() == valid, reason  # rewritten with the true vector
    # An intact cache is read back without encoding anything.
    enc2 = _encoder(tmp_path)
    assert enc2.encode(TEXTS).tobytes() == good.tobytes() and enc2.model.calls == []


# ------------------------------------------------------------------ item 5: CSV


def test_csv_exports_neutralise_formulas(tmp_path: Path) -> None:
    from mop_bench.report.export import COLUMNS, write_tables

    hostile = ['=HYPERLINK("http://evil","x")', "+1+1", "-2+3", "@SUM(A1)", "\tx", "\rx"]
    records = [
        dict.fromkeys(COLUMNS) | {"task": name, "simulator": name, "mean": -0.5, "rank": 1}
        for name in hostile
    ]
    csv_path, _ = write_tables(records, tmp_path / "leaderboard")
    import pandas as pd

    frame = pd.read_csv(csv_path, keep_default_na=False)
    expected = ["'" + h.replace("\r", "\n") for h in hostile]  # a bare CR would end the row
    assert frame["simulator"].tolist() == expected and frame["task"].tolist() == expected
    assert frame["mean"].tolist() == [-0.5] * len(hostile)  # numbers stay numbers


# ------------------------------------------------------------------ item 6: credentials


def test_credentials_in_base_url_are_stripped_and_never_recorded(
    tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mop_bench.lm import load_lm
    from mop_bench.redact import scrub

    url = "http://alice:hunter2@127.0.0.1:9/v1?api_key=sk-SECRET&region=eu&token=T0K"
    lm = LMSpec(backend="openai", base_url=url)
    assert lm.base_url == "http://127.0.0.1:9/v1?region=eu"
    spec = RunSpec(task="t", simulator=build_spec("x", "mop").simulator, lm=lm)
    blob = str(spec.to_json()) + str(spec.comparable_key())
    assert "hunter2" not in blob and "SECRET" not in blob and "T0K" not in blob
    model = load_lm(lm, batch_size=1, progress=False)
    assert "hunter2" not in model.name and "SECRET" not in model.name
    assert scrub(f"POST {url} failed") == (
        "POST http://***@127.0.0.1:9/v1?api_key=***&region=eu&token=*** failed"
    )
    # The unreachable server through the CLI: one line, rc 2, no secret, the fix named.
    card = tmp_path / "t.csv"
    card.write_text("text,label\n" + "".join(f"w{i} x y,{'ab'[i % 2]}\n" for i in range(60)))
    args = ["run", "--task", "t", "--sim", "mop", "--data", str(card), "--text-column", "text"]
    args += ["--backend", "openai", "--base-url", url, "--preset", "smoke", "--n", "4"]
    args += ["--set", "pool=20", "--set", "golden=20", "--set", "personas=2"]
    args += ["--out", str(tmp_path / "res"), "--no-progress", "-q"]
    from tests.test_runner import HashEncoder

    monkeypatch.setattr(embed, "Encoder", lambda spec=None, **kw: HashEncoder())
    monkeypatch.setenv("MOP_BENCH_CACHE", str(tmp_path / "cache"))
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Connection refused" in err and "--base-url" in err
    assert "hunter2" not in err and "SECRET" not in err
    for path in (tmp_path / "res").rglob("*.json"):
        text = path.read_text()
        assert "hunter2" not in text and "SECRET" not in text, path


# ------------------------------------------------------------------ item 7: task cards

CARD = """\
splits: {train: %s, test: %s}
text_column: text
label_column: label
label_names: [a, b]
context_template: %s
"""


def _data(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("text,label\n" + "".join(f"w{i} x y,{'ab'[i % 2]}\n" for i in range(40)))
    return path


def test_card_paths_cannot_leave_the_card_folder(tmp_path: Path) -> None:
    outside = _data(tmp_path / "secret" / "data.csv")
    cards = tmp_path / "cards"
    _data(cards / "mine.csv")
    for bad in (str(outside), "../secret/data.csv", "~/data.csv"):
        card_path = cards / "c.yaml"
        card_path.write_text(CARD % (bad, "mine.csv", "'a {label_name} text'"))
        with pytest.raises(DataError, match="must be relative and stay inside"):
            load_task(load_card(card_path), DataSpec(pool_size=5, golden_size=5), 0)
    # Inside the folder is fine; the same file named on the command line is fine too.
    (cards / "ok.yaml").write_text(CARD % ("mine.csv", "mine.csv", "'a {label_name} text'"))
    assert load_task(load_card(cards / "ok.yaml"), DataSpec(pool_size=5, golden_size=5), 0).pool
    card = resolve_task("x", data_file=str(outside), text_column="text")
    assert load_task(card, DataSpec(pool_size=5, golden_size=5), 0).pool


def test_mirror_dir_cannot_leave_the_data_dir(tmp_path: Path, monkeypatch) -> None:
    _data(tmp_path / "secret" / "train.csv")
    monkeypatch.setenv("MOP_BENCH_DATA_DIR", str(tmp_path / "data"))
    for mirror, split in (("../secret", "train.csv"), ("toy", "../../secret/train.csv")):
        path = tmp_path / "m.yaml"
        path.write_text(
            f"mirror_dir: {mirror!r}\nsplits: {{train: {split!r}, test: {split!r}}}\n"
            "text_column: text\ncontext_template: a text\n"
        )
        with pytest.raises(DataError, match="leaves"):
            load_task(load_card(path), DataSpec(pool_size=5, golden_size=5), 0)


def test_templates_allow_plain_field_names_only(tmp_path: Path) -> None:
    _data(tmp_path / "mine.csv")
    for template in (
        "'{label_name.__class__.__mro__}'",
        "'{label_name[0]}'",
        "'{label_name:{x.y}}'",
    ):
        (tmp_path / "c.yaml").write_text(CARD % ("mine.csv", "mine.csv", template))
        with pytest.raises(ValueError, match="only plain field names"):
            load_card(tmp_path / "c.yaml")


def test_duplicate_yaml_keys_are_refused(tmp_path: Path, capsys) -> None:
    _data(tmp_path / "mine.csv")
    (tmp_path / "c.yaml").write_text(
        CARD % ("mine.csv", "mine.csv", "'a {label_name} text'") + "text_column: label\n"
    )
    with pytest.raises(
        ValueError, match=r"duplicate key 'text_column' \(line 6; first at line 2\)"
    ):
        load_card(tmp_path / "c.yaml")
    sim = tmp_path / "s.yaml"
    sim.write_text("kind: mop\ngating: learned\ngating: uniform\n")
    from mop_bench.simulators import load_simulator_file

    with pytest.raises(ValueError, match="duplicate key 'gating'"):
        load_simulator_file(sim)
    overrides = tmp_path / "o.yaml"
    overrides.write_text("fit:\n  epochs: 2\n  epochs: 3\n")
    assert main(["run", "--task", "yelp", "--sim", "mop", "--config", str(overrides)]) == 2
    err = capsys.readouterr().err
    assert "duplicate key 'epochs'" in err and err.count("\n") == 1


# ------------------------------------------------------------------ item 8: messages


def test_data_errors_name_the_cause_and_the_fix(tmp_path: Path) -> None:
    latin = tmp_path / "latin.csv"
    latin.write_bytes("text,label\nfine,a\ncaf\u00e9 cr\u00e8me,b\n".encode("latin-1"))
    with pytest.raises(
        DataError, match=r"not UTF-8 text: byte 0xe9 at byte offset 21 \(line 3\)"
    ) as err:
        resolve_task("", data_file=str(latin), text_column="text")
    assert "iconv -f" in str(err.value) and "-t UTF-8" in str(err.value)

    with pytest.raises(DataError, match="is a directory; --data takes one file"):
        resolve_task("x", data_file=str(tmp_path), text_column="text")

    jsonl = tmp_path / "typed.jsonl"
    for cell, why in (("42", "holds an int (42), not text"), ('["a", "b"]', "holds a list")):
        jsonl.write_text('{"text": "fine", "label": "a"}\n' + f'{{"text": {cell}, "label": "b"}}\n')
        card = resolve_task("", data_file=str(jsonl), text_column="text")
        with pytest.raises(DataError, match=rf"line 2: field 'text' {re.escape(why)}"):
            load_task(card, DataSpec(pool_size=1, golden_size=1), 0)


# ------------------------------------------------------------------ item 9: ranges


def test_every_numeric_setting_has_a_range() -> None:
    spec = build_spec("yelp", "mop")
    numeric = []
    for path in field_paths():
        value = spec
        for part in path.split("."):
            value = getattr(value, part)
        items = value if isinstance(value, tuple) else (value,)
        if items and all(isinstance(v, int | float) and not isinstance(v, bool) for v in items):
            numeric.append(path)
    assert sorted(set(numeric) - set(RANGES)) == []
    assert range_errors(spec) == []


@pytest.mark.parametrize("path", sorted(RANGES))
def test_each_range_rejects_what_it_should(path: str) -> None:
    rule = RANGES[path]
    default = build_spec("yelp", "mop")
    for part in path.split("."):
        default = getattr(default, part)
    is_tuple = isinstance(default, tuple)
    is_int = isinstance(default[0] if is_tuple else default, int)
    bad: list[float] = [] if is_int else [float("nan"), float("inf")]
    if rule.lo is not None:
        bad.append(rule.lo if rule.lo_open else rule.lo - 1)
    if rule.hi is not None:
        bad.append(rule.hi if rule.hi_open else rule.hi + 1)
    assert bad
    for value in bad:
        value = int(value) if is_int else value
        with pytest.raises(ValueError, match=re.escape(path)):
            build_spec("yelp", "mop", overrides={path: (value,) if is_tuple else value})


def test_empty_tuple_settings_are_refused() -> None:
    for path in ("metrics.mauve_seeds", "fit.temperature_grid"):
        with pytest.raises(ValueError, match=f"{re.escape(path)} must not be empty"):
            build_spec("yelp", "mop", overrides={path: ()})


# ------------------------------------------------------------------ item 11: plots


def test_plot_text_is_never_mathtext() -> None:
    from matplotlib.text import Text

    from mop_bench.report import plots

    labels = ["costs $5 or $10", "a$^$b", "$\\frac{$"]
    for label in labels:
        assert Text()._preprocess_math(plots.plain(label)) == (label, False)
    rng = np.random.default_rng(0)
    real = rng.normal(size=(30, 6))
    uri = plots.projection(real, real + 0.1, np.arange(30) % 3, np.arange(30) % 3, labels)
    assert uri.startswith("data:image/svg+xml;base64,")
    series = [(labels[1], [1, 2], [0.1, 0.2], [None, None], [None, None])]
    assert plots.interval_plot(series, labels[2], labels[0], categorical=True)


@pytest.mark.slow
def test_real_encoder_vectors_match_whatever_the_batch(tmp_path: Path) -> None:
    """all-MiniLM-L6-v2 itself: a warm cache filled by other calls and a fresh one give
    bit-identical vectors (batched padding used to change the last bits)."""
    texts = [
        "short one",
        "a somewhat longer sentence about the food and the service here",
        "mid length text about a movie",
        "x",
        "another sentence of moderate size, with a comma",
    ] * 3
    texts = [f"{t} #{i}" for i, t in enumerate(texts)]
    fresh = embed.Encoder(cache=tmp_path / "a", progress=False).encode(texts)
    warm = embed.Encoder(cache=tmp_path / "b", progress=False)
    warm.encode([*texts[::3], "a very long filler text " * 20])
    assert warm.encode(texts).tobytes() == fresh.tobytes()
    # each text alone (texts under MIN_BATCHED_TOKENS on one thread, as the encoder does)
    alone = np.stack([warm._encode_batch([t], warm._length_batches([t])[0][0])[0] for t in texts])
    assert alone.astype(np.float32).tobytes() == fresh.tobytes()
