"""Write ``sales.csv``: a year of orders of a fictional electronics shop, deterministically.

600 orders in 2025 across four regions, five products and two channels, with a few patterns to
find: laptops bring the most revenue and phones the most units, the West grows through the year,
December is the busiest month, the online share rises, store orders get better ratings.

Run ``python -m examples.data_analysis.make_sales`` to rebuild the file (one seeded
``random.Random``: the same file on every run).
"""

from __future__ import annotations

import csv
import datetime as dt
import random
from pathlib import Path

SALES_FILE = Path(__file__).with_name("sales.csv")
COLUMNS = [
    "order_id",
    "date",
    "month",
    "region",
    "product",
    "channel",
    "units",
    "unit_price",
    "discount_pct",
    "revenue",
    "rating",
]
PRICES = {"Laptop": 1150.0, "Phone": 640.0, "Tablet": 420.0, "Monitor": 260.0, "Headphones": 95.0}
PRODUCT_WEIGHTS = {"Laptop": 18, "Phone": 30, "Tablet": 17, "Monitor": 15, "Headphones": 20}
UNITS = {
    "Laptop": (1, 4),
    "Phone": (1, 8),
    "Tablet": (1, 5),
    "Monitor": (1, 6),
    "Headphones": (2, 20),
}


def _region(rng: random.Random, month: int) -> str:
    west = 10 + 2.5 * month  # the West grows from 12 % to about 35 % of orders
    weights = {"North": 30, "South": 25, "East": 30, "West": west}
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def make_rows(count: int = 600, seed: int = 22) -> list[dict]:
    rng = random.Random(seed)
    month_weights = [7, 6, 7, 7, 8, 8, 8, 8, 9, 9, 11, 16]  # December is the peak
    rows = []
    for _ in range(count):
        month = rng.choices(range(1, 13), weights=month_weights)[0]
        days = (dt.date(2025 + month // 12, month % 12 + 1, 1) - dt.date(2025, month, 1)).days
        day = dt.date(2025, month, rng.randint(1, days))
        product = rng.choices(list(PRODUCT_WEIGHTS), weights=list(PRODUCT_WEIGHTS.values()))[0]
        online = rng.random() < 0.35 + 0.03 * month
        units = rng.randint(*UNITS[product])
        unit_price = round(PRICES[product] * rng.uniform(0.9, 1.1), 2)
        discount = rng.choices([0, 5, 10, 15, 20], weights=[50, 20, 15, 10, 5])[0]
        rating = min(5, max(1, round(rng.gauss(3.6 if online else 4.1, 0.8))))
        rows.append(
            {
                "date": day.isoformat(),
                "month": f"2025-{month:02d}",
                "region": _region(rng, month),
                "product": product,
                "channel": "online" if online else "store",
                "units": units,
                "unit_price": unit_price,
                "discount_pct": discount,
                "revenue": round(units * unit_price * (1 - discount / 100), 2),
                "rating": rating,
            }
        )
    rows.sort(key=lambda r: r["date"])
    return [{"order_id": 1001 + i, **row} for i, row in enumerate(rows)]


def main() -> None:
    rows = make_rows()
    with SALES_FILE.open("w", newline="", encoding="utf-8") as out:
        writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {len(rows)} orders to {SALES_FILE}")


if __name__ == "__main__":
    main()
