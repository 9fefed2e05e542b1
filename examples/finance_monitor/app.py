"""The monitor as a function library: the four tools the model calls, and the system prompt.

``FinanceMonitor.load`` reads the bundled feed, loads (or trains and caches) the classifier and
labels the feed. The embedding model itself loads only when a tool must classify a new headline.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from examples.finance_monitor.classifier import (
    Headline,
    NewsClassifier,
    TextEncoder,
    load_headlines,
    trained_classifier,
)
from examples.finance_monitor.make_headlines import COMPANIES, HEADLINES_FILE
from examples.finance_monitor.monitor import Monitor
from fncall.tools import ToolSet

Topic = Literal["all", "banking", "technology", "energy", "real_estate", "consumer"]
Period = Literal["last_week", "last_month", "last_quarter"]


def default_cache_dir() -> Path:
    home = os.environ.get("FNCALL_HOME") or Path.home() / ".cache" / "fncall"
    return Path(home) / "examples" / "finance_monitor"


def _default_encoder() -> TextEncoder:
    from fncall.embed import default_embedder

    return default_embedder()


@dataclass
class FinanceMonitor:
    headlines: list[Headline]
    classifier: NewsClassifier
    monitor: Monitor
    encoder_factory: Any = _default_encoder
    _encoder: TextEncoder | None = field(default=None, repr=False)

    @classmethod
    def load(
        cls,
        *,
        cache_dir: Path | None = None,
        data_file: Path = HEADLINES_FILE,
        encoder_factory: Any = _default_encoder,
    ) -> FinanceMonitor:
        headlines = load_headlines(data_file)
        classifier = trained_classifier(
            headlines,
            encoder_factory,
            cache_dir=cache_dir or default_cache_dir(),
            data_file=data_file,
        )
        return cls(
            headlines=headlines,
            classifier=classifier,
            monitor=Monitor(headlines, classifier),
            encoder_factory=encoder_factory,
        )

    @property
    def encoder(self) -> TextEncoder:
        if self._encoder is None:
            self._encoder = self.encoder_factory()
        return self._encoder

    def system_prompt(self) -> str:
        """The feed's dates, its companies, and one example call per kind of question: the
        default 0.5B model picks the tool whose name shares a word with the question
        (classify_sentiment for "sentiment about banks") unless shown otherwise."""
        companies = ", ".join(e for pairs in COMPANIES.values() for e, _ in pairs)
        return (
            f"You monitor financial news from {self.monitor.first_day} to {self.monitor.today} "
            f"(today). Companies: {companies}.\n"
            "Examples:\n"
            '"How did tech news look this month?" -> '
            'summarize_period(topic="technology", period="last_month")\n'
            '"Is this good or bad news: Polar Oil cuts 300 jobs" -> '
            'classify_sentiment(headline="Polar Oil cuts 300 jobs")\n'
            '"Which sector is this about: Maple Retail opens 20 stores" -> '
            'classify_topic(headline="Maple Retail opens 20 stores")\n'
            '"Warn me when a company gets 2 bad headlines in 3 days" -> '
            "raise_alert(min_negative=2, window_days=3)\n"
            "After the result, answer in one or two sentences."
        )

    def tools(self) -> ToolSet:
        app = self

        def classify_sentiment(headline: str) -> dict[str, Any]:
            """Classify a quoted headline (English or Chinese) as positive, negative or neutral.

            Args:
                headline: The headline text, exactly as the user quoted it.
            """
            label = app.classifier.classify([headline], app.encoder)[0]
            return {
                "sentiment": label["sentiment"],
                "confidence": label["sentiment_confidence"],
            }

        def classify_topic(headline: str) -> dict[str, Any]:
            """Classify the sector of a quoted headline (English or Chinese).

            Args:
                headline: The headline text, exactly as the user quoted it.
            """
            label = app.classifier.classify([headline], app.encoder)[0]
            return {"topic": label["topic"], "confidence": label["topic_confidence"]}

        def summarize_period(
            topic: Topic, period: Period = "last_week", company: str | None = None
        ) -> dict[str, Any]:
            """How news sentiment about a topic or company went over a recent period.

            Args:
                topic: The sector (banking for banks), or all.
                period: last_week, last_month or last_quarter.
                company: Only this company's news.
            """
            return app.monitor.summarize(topic=topic, period=period, company=company)

        def raise_alert(
            topic: Topic = "all",
            company: str | None = None,
            min_negative: int = 4,
            window_days: int = 7,
        ) -> dict[str, Any]:
            """Alert on companies or topics with many negative headlines within a few days.

            Fires for each with at least min_negative negative headlines in window_days days.

            Args:
                topic: Check this sector and its companies, or all.
                company: Check only this company.
                min_negative: How many negative headlines trigger the alert.
                window_days: The window in days (7 = a week).
            """
            return app.monitor.alerts(
                topic=topic, company=company, min_negative=min_negative, window_days=window_days
            )

        # The period question first: offered the classifiers first, the default model answered
        # "How was sentiment about banks last week?" with classify_sentiment of a made-up headline.
        return ToolSet([summarize_period, raise_alert, classify_sentiment, classify_topic])
