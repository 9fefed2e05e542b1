"""The monitor over the classified feed: period summaries, threshold alerts, the chart, the report.

Every figure here comes from the classifier's labels for the feed, not from the hand labels, as it
would for news arriving without any: the report says how accurate those labels are on held-out
wordings. "Today" is the feed's last day.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from examples.finance_monitor.classifier import Headline, NewsClassifier
from examples.finance_monitor.make_headlines import COMPANIES

TOPICS = ("banking", "technology", "energy", "real_estate", "consumer")
PERIOD_DAYS = {"last_week": 7, "last_month": 30, "last_quarter": 91}
SENTIMENTS = ("negative", "neutral", "positive")
MAX_ALERTS = 5  # per list in a raise_alert result


@dataclass(frozen=True, kw_only=True)
class Item:
    """One headline of the feed with the labels the classifier gave it."""

    day: dt.date
    headline: str
    company: str | None
    topic: str
    sentiment: str


def company_names() -> dict[str, str]:
    """Every spelling a user may use (English, Chinese, lower case) -> the English name."""
    names = {}
    for pairs in COMPANIES.values():
        for english, chinese in pairs:
            names[english.lower()] = english
            names[chinese] = english
    return names


def resolve_company(name: str) -> str:
    """The company ``name`` means ('harbor', '海港金融' and 'Harbor Financial' all do)."""
    names = company_names()
    wanted = name.strip().lower()
    if wanted in names:
        return names[wanted]
    matches = {english for spelling, english in names.items() if wanted and wanted in spelling}
    if len(matches) == 1:
        return matches.pop()
    known = sorted(set(names.values()))
    raise ValueError(f"unknown company {name!r}; the feed covers: {', '.join(known)}")


class Monitor:
    def __init__(self, headlines: Sequence[Headline], classifier: NewsClassifier) -> None:
        topics = classifier.predictions("topic")
        sentiments = classifier.predictions("sentiment")
        self.items = [
            Item(
                day=dt.date.fromisoformat(h.date),
                headline=h.headline,
                company=h.company,
                topic=topic,
                sentiment=sentiment,
            )
            for h, topic, sentiment in zip(headlines, topics, sentiments, strict=True)
        ]
        self.today = max(item.day for item in self.items)
        self.first_day = min(item.day for item in self.items)

    def select(
        self, *, topic: str = "all", company: str | None = None, start: dt.date, end: dt.date
    ) -> list[Item]:
        return [
            item
            for item in self.items
            if start <= item.day <= end
            and (topic == "all" or item.topic == topic)
            and (company is None or item.company == company)
        ]

    def summarize(
        self, *, topic: str = "all", period: str = "last_week", company: str | None = None
    ) -> dict[str, Any]:
        if period not in PERIOD_DAYS:
            raise ValueError(f"unknown period {period!r}; use one of {', '.join(PERIOD_DAYS)}")
        _check_topic(topic)
        company = resolve_company(company) if company else None
        days = PERIOD_DAYS[period]
        start = self.today - dt.timedelta(days=days - 1)
        items = self.select(topic=topic, company=company, start=start, end=self.today)
        before = self.select(
            topic=topic,
            company=company,
            start=start - dt.timedelta(days=days),
            end=start - dt.timedelta(days=1),
        )
        counts = Counter(item.sentiment for item in items)
        summary: dict[str, Any] = {
            "subject": company or ("all topics" if topic == "all" else topic),
            "period": f"{start} to {self.today}",
            "headlines": len(items),
            **{s: counts[s] for s in SENTIMENTS},
            "net_sentiment": net_sentiment(items),
            "net_sentiment_previous_period": net_sentiment(before),
            "mood": mood(net_sentiment(items)),
        }
        negatives = [i.headline for i in items if i.sentiment == "negative"]
        if negatives:
            summary["negative_examples"] = negatives[-3:]
        return summary

    def alerts(
        self,
        *,
        topic: str = "all",
        company: str | None = None,
        min_negative: int = 4,
        window_days: int = 7,
    ) -> dict[str, Any]:
        """Fire for every subject with ``min_negative`` negative headlines or more in some
        ``window_days``-day window: the named company, or each company of the topic and the
        topic itself."""
        if min_negative < 1 or not 1 <= window_days <= 92:
            raise ValueError(
                f"min_negative must be at least 1 (got {min_negative}) and window_days 1 to 92 "
                f"(got {window_days})"
            )
        _check_topic(topic)
        subjects: list[tuple[str, dict[str, Any]]] = []
        if company:
            name = resolve_company(company)
            subjects.append((name, {"company": name}))
        else:
            topics = TOPICS if topic == "all" else (topic,)
            for t in topics:
                subjects.append((t, {"topic": t}))
                subjects += [(c, {"company": c}) for c, _ in COMPANIES[t]]
        rule = f"{min_negative}+ negative headlines within {window_days} days"
        now, earlier = [], []
        for subject, selection in subjects:
            alert = self._last_window(selection, min_negative, window_days)
            if alert is None:
                continue
            if alert["active_now"]:
                now.append({"subject": subject, **alert})
            else:
                earlier.append({"subject": subject, "last_fired": alert["window"].split()[-1]})
        now.sort(key=lambda a: a["negative_in_window"], reverse=True)
        earlier.sort(key=lambda a: a["last_fired"], reverse=True)
        # The model reads every character: the strongest few, and how many more there were.
        result: dict[str, Any] = {"rule": rule, "triggered_now": now[:MAX_ALERTS]}
        if len(now) > MAX_ALERTS:
            result["more_triggered_now"] = len(now) - MAX_ALERTS
        result["triggered_earlier"] = earlier[:MAX_ALERTS]
        return result

    def _last_window(
        self, selection: dict[str, Any], min_negative: int, window_days: int
    ) -> dict[str, Any] | None:
        """The latest window of ``window_days`` days that held ``min_negative`` negative
        headlines of the selection or more, or None if no window did."""
        negatives = sorted(
            (
                i
                for i in self.select(start=self.first_day, end=self.today, **selection)
                if i.sentiment == "negative"
            ),
            key=lambda i: i.day,
        )
        latest: list[Item] | None = None
        start = 0
        for end, item in enumerate(negatives):
            while (item.day - negatives[start].day).days >= window_days:
                start += 1
            if end + 1 - start >= min_negative:
                latest = negatives[start : end + 1]
        if latest is None:
            return None
        last_day = latest[-1].day
        first_day = last_day - dt.timedelta(days=window_days - 1)
        return {
            "window": f"{first_day} to {last_day}",
            "active_now": (self.today - last_day).days < window_days,
            "negative_in_window": len(latest),
            "examples": [i.headline for i in latest[-2:]],
        }

    def weekly(self) -> list[dict[str, Any]]:
        """Per week (Monday to Sunday) and topic: headline counts and net sentiment."""
        weeks: dict[dt.date, list[Item]] = {}
        for item in self.items:
            weeks.setdefault(item.day - dt.timedelta(days=item.day.weekday()), []).append(item)
        rows = []
        for monday in sorted(weeks):
            items = weeks[monday]
            row: dict[str, Any] = {"week": monday, "counts": Counter(i.sentiment for i in items)}
            for topic in TOPICS:
                in_topic = [i for i in items if i.topic == topic]
                row[topic] = net_sentiment(in_topic) if in_topic else None
            rows.append(row)
        return rows


def net_sentiment(items: Sequence[Item]) -> float:
    """(positive - negative) / all, from -1 (all negative) to 1 (all positive); 0 when empty."""
    if not items:
        return 0.0
    counts = Counter(item.sentiment for item in items)
    return round((counts["positive"] - counts["negative"]) / len(items), 2)


def mood(net: float) -> str:
    if net <= -0.3:
        return "clearly negative"
    if net < -0.05:
        return "somewhat negative"
    if net <= 0.05:
        return "mixed"
    if net < 0.3:
        return "somewhat positive"
    return "clearly positive"


def _check_topic(topic: str) -> None:
    if topic != "all" and topic not in TOPICS:
        raise ValueError(f"unknown topic {topic!r}; use one of {', '.join(TOPICS)} or 'all'")


def write_chart(monitor: Monitor, path: Path) -> Path:
    """One small panel per topic (weekly net sentiment, red below zero, green above) over the
    week's headlines by sentiment: a line per topic on one axis was unreadable."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    weekly = monitor.weekly()
    weeks = [row["week"] for row in weekly]
    figure = plt.figure(figsize=(12, 7))
    grid = figure.add_gridspec(2, len(TOPICS), height_ratios=[1, 1], hspace=0.45, wspace=0.08)
    first = None
    for column, topic in enumerate(TOPICS):
        axes = figure.add_subplot(grid[0, column], sharey=first)
        first = first or axes
        points = [(row["week"], row[topic]) for row in weekly if row[topic] is not None]
        days, values = zip(*points, strict=True)
        axes.bar(days, values, width=5, color=["#c0392b" if v < 0 else "#27ae60" for v in values])
        axes.axhline(0, color="grey", linewidth=0.8)
        axes.set_title(topic.replace("_", " "), fontsize=10)
        axes.set_ylim(-1.05, 1.05)
        axes.xaxis.set_major_locator(mdates.MonthLocator())
        axes.xaxis.set_major_formatter(mdates.DateFormatter("%b"))
        axes.grid(axis="y", alpha=0.3)
        if column:
            axes.tick_params(labelleft=False)
        else:
            axes.set_ylabel("weekly net sentiment\n(positive - negative) / all")
    colours = {"negative": "#c0392b", "neutral": "#95a5a6", "positive": "#27ae60"}
    total = figure.add_subplot(grid[1, :])
    base = [0] * len(weekly)
    for sentiment in SENTIMENTS:
        heights = [row["counts"][sentiment] for row in weekly]
        total.bar(weeks, heights, bottom=base, width=5, color=colours[sentiment], label=sentiment)
        base = [b + h for b, h in zip(base, heights, strict=True)]
    total.set_ylabel("headlines per week")
    total.set_xlabel("week starting (Monday)")
    total.xaxis.set_major_formatter(mdates.DateFormatter("%d %b"))
    total.legend(loc="lower right", bbox_to_anchor=(1, 1), ncols=3, fontsize=9, frameon=False)
    total.set_title("All topics: headlines by sentiment", fontsize=10, loc="left")
    figure.suptitle(
        f"Financial news sentiment, {monitor.first_day} to {monitor.today} (classifier labels)",
        fontsize=12,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(figure)
    return path


def write_report(
    monitor: Monitor,
    classifier_summary: str,
    chart: Path,
    path: Path,
    transcript: Sequence[tuple[str, str]] = (),
) -> Path:
    """The Markdown report: each topic's last week and month, the alerts of the default rule
    (4 negatives in 7 days), the chart, the classifier's figures and the questions asked."""
    lines = [
        "# Financial news monitor",
        "",
        f"Feed: {len(monitor.items)} headlines, {monitor.first_day} to {monitor.today}. "
        "Labels come from the classifier (figures below), not from the hand labels.",
        "",
        "| topic | last week: headlines | neg / neu / pos | net | last month: net | mood |",
        "|---|---|---|---|---|---|",
    ]
    for topic in (*TOPICS, "all"):
        week = monitor.summarize(topic=topic, period="last_week")
        month = monitor.summarize(topic=topic, period="last_month")
        lines.append(
            f"| {topic} | {week['headlines']} | {week['negative']} / {week['neutral']} / "
            f"{week['positive']} | {week['net_sentiment']:+.2f} | "
            f"{month['net_sentiment']:+.2f} | {week['mood']} |"
        )
    alerts = monitor.alerts()
    lines += ["", f"## Alerts now ({alerts['rule']})", ""]
    if not alerts["triggered_now"]:
        lines.append("None.")
    for alert in alerts["triggered_now"]:
        lines.append(
            f"- **{alert['subject']}**: {alert['negative_in_window']} negative headlines, "
            f"{alert['window']}, e.g. \u201c{alert['examples'][-1]}\u201d"
        )
    if alerts["triggered_earlier"]:
        earlier = ", ".join(
            f"{a['subject']} ({a['last_fired']})" for a in alerts["triggered_earlier"]
        )
        lines += ["", f"Fired earlier in the period, not now: {earlier}."]
    lines += ["", f"![sentiment over time]({chart.name})", "", "## Classifier", "", "```"]
    lines += [classifier_summary, "```"]
    if transcript:
        lines += ["", "## Questions", ""]
        for question, answer in transcript:
            lines += [f"**Q:** {question}", "", f"**A:** {answer}", ""]
    path.write_text("\n".join(lines).rstrip() + "\n", encoding="utf-8")
    return path
