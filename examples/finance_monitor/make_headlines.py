"""Write ``headlines.jsonl``: the monitor's bundled news feed, deterministically.

The headlines are written for this project: five topics, fictional companies, English and
Chinese, labelled with a topic and a sentiment, dated 2026-09-01 to 2026-11-27. Each (topic,
sentiment, language) has several hand-written wordings; the last ones of each are held out
(``split: "test"``), so the classifier's held-out accuracy is measured on wordings it never saw,
not on new fillings of a wording it trained on. The sentiment mix drifts over time (a banking
scare in the last weeks, an energy slump in September) so that summaries and alerts have
something to find.

Run ``python -m examples.finance_monitor.make_headlines`` to rebuild the file; the output is the
same on every run (one seeded ``random.Random``).
"""

from __future__ import annotations

import datetime as dt
import json
import random
from pathlib import Path

HEADLINES_FILE = Path(__file__).with_name("headlines.jsonl")
FIRST_DAY = dt.date(2026, 9, 1)
LAST_DAY = dt.date(2026, 11, 27)
COUNT = 420
HELD_OUT = {"en": 2, "zh": 1}  # the last wordings of each cell, per language

COMPANIES = {
    "banking": [
        ("Harbor Financial", "海港金融"),
        ("Northbridge Bank", "北桥银行"),
        ("Jade River Bank", "玉河银行"),
    ],
    "technology": [
        ("Quantix Systems", "量科系统"),
        ("Lumen Semiconductor", "流明半导体"),
        ("Cloudnest", "云巢科技"),
    ],
    "energy": [
        ("Redrock Energy", "红岩能源"),
        ("Sunfield Power", "阳田电力"),
        ("Polar Oil", "极地石油"),
    ],
    "real_estate": [("Skyline Properties", "天际地产"), ("Greenway Homes", "绿道置业")],
    "consumer": [("Maple Retail", "枫叶零售"), ("Golden Lotus Foods", "金莲食品")],
}

# topic -> sentiment -> language -> wordings. {co}: a company; {pct}, {n}, {amt}: numbers.
WORDINGS: dict[str, dict[str, dict[str, list[str]]]] = {
    "banking": {
        "positive": {
            "en": [
                "{co} beats profit forecasts as lending margins widen",
                "{co} shares jump {pct}% after strong quarterly earnings",
                "Regional lenders rally as loan defaults fall to a two-year low",
                "{co} raises dividend, citing robust capital position",
                "Analysts upgrade {co} on improving credit quality",
                "Deposits flow back into mid-sized banks, easing funding worries",
            ],
            "zh": [
                "{co}第三季度净利润增长{pct}%，超出市场预期",
                "{co}获评级机构上调评级，股价走高",
                "银行板块集体上涨，不良贷款率持续下降",
                "{co}宣布提高分红，资本充足率保持稳健",
            ],
        },
        "negative": {
            "en": [
                "{co} shares tumble {pct}% on mounting bad-loan provisions",
                "Regulators open probe into {co} over anti-money-laundering lapses",
                "{co} hit by deposit outflows as savers grow nervous",
                "Bank stocks slide as fears over commercial property loans deepen",
                "{co} posts surprise quarterly loss, suspends buyback",
                "Credit rating agency cuts {co} outlook to negative",
            ],
            "zh": [
                "{co}股价暴跌{pct}%，坏账拨备大幅增加",
                "监管部门对{co}展开调查，涉嫌违规放贷",
                "储户担忧加剧，{co}存款大量流出",
                "{co}意外录得季度亏损，暂停股票回购",
            ],
        },
        "neutral": {
            "en": [
                "{co} to report third-quarter results on Thursday",
                "{co} names new chief risk officer",
                "Central bank leaves benchmark lending rate unchanged",
                "{co} completes previously announced branch system upgrade",
                "{co} schedules investor day for next month",
                "Banking association publishes annual survey of lending standards",
            ],
            "zh": [
                "{co}将于周四公布第三季度业绩",
                "{co}任命新任首席风险官",
                "央行维持基准贷款利率不变",
                "{co}召开年度股东大会",
            ],
        },
    },
    "technology": {
        "positive": {
            "en": [
                "{co} revenue surges {pct}% on booming demand for AI chips",
                "{co} wins multi-billion-dollar cloud contract",
                "{co} shares hit record high after upbeat guidance",
                "Tech stocks lead market gains as chip orders accelerate",
                "{co} unveils faster processor, analysts cheer",
                "{co} lifts full-year outlook on strong subscription growth",
            ],
            "zh": [
                "{co}营收大增{pct}%，人工智能芯片需求旺盛",
                "{co}赢得数十亿元云计算大单",
                "科技股领涨大盘，芯片订单加速增长",
                "{co}上调全年业绩指引，股价创新高",
            ],
        },
        "negative": {
            "en": [
                "{co} to cut {n} jobs as sales slow",
                "{co} shares sink {pct}% after weak outlook",
                "Antitrust regulators fine {co} ${amt} billion",
                "Chip glut weighs on tech earnings, shares retreat",
                "{co} recalls devices over battery overheating",
                "Data breach exposes millions of {co} customer records",
            ],
            "zh": [
                "{co}宣布裁员{n}人，销售放缓",
                "{co}业绩指引疲弱，股价下挫{pct}%",
                "反垄断机构对{co}处以{amt}亿元罚款",
                "{co}发生数据泄露，数百万用户信息外泄",
            ],
        },
        "neutral": {
            "en": [
                "{co} to hold annual developer conference in San Francisco",
                "{co} appoints former executive as board chair",
                "{co} releases software update for enterprise customers",
                "Tech industry group publishes report on cloud adoption",
                "{co} confirms date for fourth-quarter earnings call",
                "{co} moves regional headquarters to a new campus",
            ],
            "zh": [
                "{co}将在深圳举办年度开发者大会",
                "{co}发布面向企业客户的软件更新",
                "{co}任命前高管为董事会主席",
                "{co}确认第四季度财报发布日期",
            ],
        },
    },
    "energy": {
        "positive": {
            "en": [
                "{co} profit climbs as oil prices rebound",
                "{co} discovers large new gas field offshore",
                "{co} shares rise {pct}% on record solar installations",
                "Energy stocks gain as crude climbs above $90",
                "{co} secures long-term supply deal with major utility",
                "{co} output hits all-time high, beating targets",
            ],
            "zh": [
                "油价反弹，{co}利润攀升",
                "{co}在海上发现大型天然气田",
                "{co}光伏装机创纪录，股价上涨{pct}%",
                "{co}与大型电网公司签订长期供电协议",
            ],
        },
        "negative": {
            "en": [
                "{co} shares slump as crude prices plunge",
                "Pipeline leak forces {co} to halt production",
                "{co} writes down ${amt} billion on failed drilling project",
                "Oil majors under pressure as demand outlook darkens",
                "{co} fined over refinery emissions violations",
                "Power outages spark lawsuit against {co}",
            ],
            "zh": [
                "原油价格暴跌，{co}股价大幅下滑",
                "管道泄漏，{co}被迫停产",
                "{co}钻探项目失败，计提{amt}亿元减值",
                "{co}炼油厂排放违规被罚",
            ],
        },
        "neutral": {
            "en": [
                "{co} to present drilling plans at energy conference",
                "OPEC meeting ends with production quotas unchanged",
                "{co} names new head of renewables division",
                "{co} files routine quarterly production report",
                "{co} to begin scheduled maintenance at northern refinery",
                "Energy ministry publishes winter fuel supply forecast",
            ],
            "zh": [
                "{co}将在能源大会上介绍钻探计划",
                "欧佩克会议结束，产量配额维持不变",
                "{co}任命新能源部门负责人",
                "{co}按计划对北方炼油厂进行检修",
            ],
        },
    },
    "real_estate": {
        "positive": {
            "en": [
                "{co} sales jump {pct}% as mortgage rates ease",
                "Home prices rise for a third straight month, lifting developers",
                "{co} completes refinancing, easing debt concerns",
                "{co} shares soar after strong pre-sales figures",
                "Housing starts beat expectations, builders rally",
                "{co} sells office tower at a premium to book value",
            ],
            "zh": [
                "房贷利率下调，{co}销售额增长{pct}%",
                "房价连续三个月上涨，开发商股价走强",
                "{co}完成再融资，债务压力缓解",
                "{co}预售数据亮眼，股价大涨",
            ],
        },
        "negative": {
            "en": [
                "{co} misses bond payment, raising default fears",
                "{co} shares crash {pct}% as home sales collapse",
                "Property developers slide as unsold inventory piles up",
                "{co} halts construction on several projects amid cash crunch",
                "Creditors seek to wind up {co} over unpaid debts",
                "Commercial property values fall {pct}%, hurting landlords",
            ],
            "zh": [
                "{co}债券未能按期兑付，违约风险上升",
                "{co}销售崩盘，股价暴跌{pct}%",
                "房地产开发商股价下跌，库存积压严重",
                "{co}资金链紧张，多个项目停工",
            ],
        },
        "neutral": {
            "en": [
                "{co} to announce annual sales figures next week",
                "{co} appoints new chief financial officer",
                "City council approves zoning review for downtown district",
                "{co} launches new residential project in the suburbs",
                "{co} holds extraordinary general meeting on asset sale",
                "Statistics office releases monthly housing data",
            ],
            "zh": [
                "{co}将于下周公布年度销售数据",
                "{co}任命新任首席财务官",
                "{co}在郊区推出新住宅项目",
                "统计局发布月度房地产数据",
            ],
        },
    },
    "consumer": {
        "positive": {
            "en": [
                "{co} same-store sales rise {pct}% on strong holiday demand",
                "{co} beats earnings estimates as shoppers return",
                "Consumer confidence climbs to highest level this year",
                "{co} expands into new markets after record quarter",
                "{co} shares gain as online orders double",
                "Retail sales growth tops forecasts, lifting store chains",
            ],
            "zh": [
                "节日需求强劲，{co}同店销售增长{pct}%",
                "{co}业绩超预期，消费者回流",
                "消费者信心指数升至年内最高",
                "{co}线上订单翻倍，股价上涨",
            ],
        },
        "negative": {
            "en": [
                "{co} issues profit warning as shoppers cut back",
                "{co} recalls products over contamination concerns",
                "{co} to close {n} stores after sales slump",
                "Retailers hit as consumer spending falls for second month",
                "{co} shares drop {pct}% on weak holiday outlook",
                "Food safety scandal engulfs {co}",
            ],
            "zh": [
                "消费者缩减开支，{co}发布盈利预警",
                "{co}因污染问题召回产品",
                "销售下滑，{co}将关闭{n}家门店",
                "食品安全丑闻波及{co}",
            ],
        },
        "neutral": {
            "en": [
                "{co} to open flagship store in Shanghai next spring",
                "{co} names new chief marketing officer",
                "{co} updates loyalty program terms",
                "Retail federation releases weekly footfall figures",
                "{co} to report quarterly sales on Tuesday",
                "{co} changes packaging supplier",
            ],
            "zh": [
                "{co}明年春天将在上海开设旗舰店",
                "{co}任命新任首席营销官",
                "{co}调整会员计划条款",
                "{co}将于周二公布季度销售数据",
            ],
        },
    },
}

TOPIC_WEIGHTS = {"banking": 26, "technology": 22, "energy": 20, "real_estate": 16, "consumer": 16}


def sentiment_odds(topic: str, day: dt.date) -> dict[str, float]:
    """The chance of each sentiment for a headline on ``topic`` on ``day``: the story of the
    period, which summaries, alerts and the chart should find again."""
    week = (day - FIRST_DAY).days // 7  # 0 .. 12
    if topic == "banking":
        negative = 0.65 if week >= 11 else 0.2  # a deposit scare in the last two weeks
        return {"negative": negative, "positive": 0.75 - negative, "neutral": 0.25}
    if topic == "energy":
        negative = 0.6 if week <= 3 else 0.25  # crude slumps in September, then recovers
        return {"negative": negative, "positive": 0.7 - negative, "neutral": 0.3}
    if topic == "technology":
        return {"positive": 0.5, "negative": 0.2, "neutral": 0.3}
    if topic == "real_estate":
        return {"negative": 0.45, "positive": 0.2, "neutral": 0.35}
    return {"positive": 0.3, "negative": 0.3, "neutral": 0.4}


def _pick(rng: random.Random, weights: dict[str, float]) -> str:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def _company(rng: random.Random, topic: str, sentiment: str, day: dt.date) -> tuple[str, str]:
    # The banking scare centres on one lender, so a per-company alert has a target.
    scare = topic == "banking" and sentiment == "negative" and day >= LAST_DAY - dt.timedelta(13)
    if scare and rng.random() < 0.7:
        return COMPANIES["banking"][0]
    return rng.choice(COMPANIES[topic])


def make_headlines(count: int = COUNT, seed: int = 22) -> list[dict]:
    rng = random.Random(seed)
    days = (LAST_DAY - FIRST_DAY).days + 1
    next_wording: dict[tuple[str, str, str], int] = {}
    seen: set[str] = set()
    rows: list[dict] = []
    while len(rows) < count:
        topic = _pick(rng, TOPIC_WEIGHTS)
        day = FIRST_DAY + dt.timedelta(days=rng.randrange(days))
        sentiment = _pick(rng, sentiment_odds(topic, day))
        lang = "zh" if rng.random() < 0.4 else "en"
        wordings = WORDINGS[topic][sentiment][lang]
        cell = (topic, sentiment, lang)
        index = next_wording.get(cell, 0) % len(wordings)  # every wording in turn
        next_wording[cell] = index + 1
        english, chinese = _company(rng, topic, sentiment, day)
        wording = wordings[index]
        headline = wording.format(
            co=english if lang == "en" else chinese,
            pct=rng.randint(2, 18),
            n=rng.choice([120, 300, 450, 800, 1200, 2500, 4000]),
            amt=round(rng.uniform(1.2, 9.8), 1),
        )
        if headline in seen:  # a wording without blanks fits once
            continue
        seen.add(headline)
        held_out = index >= len(wordings) - HELD_OUT[lang]
        rows.append(
            {
                "date": day.isoformat(),
                "lang": lang,
                "headline": headline,
                "company": english if "{co}" in wording else None,
                "topic": topic,
                "sentiment": sentiment,
                "split": "test" if held_out else "train",
            }
        )
    rows.sort(key=lambda r: (r["date"], r["headline"]))
    for number, row in enumerate(rows, 1):
        row["id"] = f"h{number:03d}"
    return rows


def main() -> None:
    rows = make_headlines()
    with HEADLINES_FILE.open("w", encoding="utf-8") as out:
        for row in rows:
            out.write(json.dumps({"id": row.pop("id"), **row}, ensure_ascii=False) + "\n")
    test = sum(r["split"] == "test" for r in rows)
    print(f"wrote {len(rows)} headlines ({test} held out) to {HEADLINES_FILE}")


if __name__ == "__main__":
    main()
