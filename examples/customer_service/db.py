"""The shop's SQLite database: schema, a deterministic seed, and where the file lives.

The data is made up by a seeded random generator, so every fresh database is identical: the
same customers, orders, shipments and refunds on every machine, which lets the tests and the
README name real order numbers. "Today" is fixed (``TODAY``) for the same reason.

The file is written next to nothing in the repository: by default under
``$FNCALL_HOME/examples/customer_service`` (``~/.cache/fncall`` when unset), or in a folder the
user chooses. A seed writes a temporary file and renames it into place, so an interrupted seed
never leaves a half-filled database behind.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import sqlite3
from pathlib import Path

DB_NAME = "shop.sqlite"
SEED = 22
TODAY = dt.date(2026, 11, 30)
FIRST_ORDER_ID = 1001

SCHEMA = """
CREATE TABLE customers (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    email TEXT NOT NULL UNIQUE,
    city TEXT NOT NULL,
    joined TEXT NOT NULL
);
CREATE TABLE orders (
    id INTEGER PRIMARY KEY,
    customer_id INTEGER NOT NULL REFERENCES customers(id),
    placed TEXT NOT NULL,
    status TEXT NOT NULL
        CHECK (status IN ('processing', 'shipped', 'delivered', 'cancelled', 'refunded')),
    total_cents INTEGER NOT NULL CHECK (total_cents > 0)
);
CREATE TABLE order_items (
    order_id INTEGER NOT NULL REFERENCES orders(id),
    product TEXT NOT NULL,
    quantity INTEGER NOT NULL CHECK (quantity > 0),
    unit_price_cents INTEGER NOT NULL
);
CREATE TABLE shipments (
    order_id INTEGER PRIMARY KEY REFERENCES orders(id),
    carrier TEXT NOT NULL,
    tracking_number TEXT NOT NULL,
    shipped_on TEXT NOT NULL,
    expected_on TEXT NOT NULL,
    delivered_on TEXT
);
CREATE TABLE refunds (
    id INTEGER PRIMARY KEY,
    order_id INTEGER NOT NULL UNIQUE REFERENCES orders(id),
    amount_cents INTEGER NOT NULL,
    reason TEXT NOT NULL,
    created_on TEXT NOT NULL
);
CREATE INDEX orders_by_customer ON orders(customer_id);
CREATE INDEX items_by_order ON order_items(order_id);
"""

# fmt: off
_FIRST = [
    "Alice", "Bruno", "Chen", "Dana", "Emeka", "Fatima", "Gustav", "Hana", "Ivan", "Julia",
    "Kofi", "Lena", "Mateo", "Nadia", "Omar", "Priya", "Quentin", "Rosa", "Sven", "Tomoko",
    "Umar", "Vera", "Wei", "Ximena", "Yusuf", "Zoe",
]
_LAST = [
    "Moreau", "Silva", "Wang", "Kowalski", "Okafor", "Haddad", "Lind", "Sato", "Petrov", "Rossi",
    "Mensah", "Fischer", "Garcia", "Nowak", "Farouk", "Iyer", "Dubois", "Lopez", "Berg",
    "Tanaka",
]
_CITIES = [
    "Lyon", "Porto", "Toronto", "Krakow", "Lagos", "Beirut", "Uppsala", "Osaka", "Sofia",
    "Turin", "Accra", "Leipzig", "Austin", "Gdansk", "Cairo", "Pune",
]
# fmt: on
_PRODUCTS = [  # (name, price in cents)
    ("USB-C charging cable", 1299),
    ("Wireless mouse", 2899),
    ("Mechanical keyboard", 8999),
    ("Noise-cancelling headphones", 19900),
    ("27-inch monitor", 28900),
    ("Laptop stand", 3999),
    ("Webcam HD", 5499),
    ("Portable SSD 1 TB", 10999),
    ("Phone case", 1899),
    ("Smart watch", 24900),
    ("Bluetooth speaker", 6999),
    ("Desk lamp", 3499),
    ("Power bank 20000 mAh", 4599),
    ("Travel adapter", 2199),
    ("Ergonomic chair", 34900),
    ("E-reader", 13999),
]
_CARRIERS = ["UPS", "DHL", "FedEx", "PostNL"]
_REFUND_REASONS = ["arrived damaged", "wrong item sent", "changed my mind", "stopped working"]

N_CUSTOMERS = 80
N_ORDERS = 240


def default_data_dir() -> Path:
    """Where the database lives unless the user chooses: a cache folder, never the repo."""
    home = os.environ.get("FNCALL_HOME") or Path.home() / ".cache" / "fncall"
    return Path(home) / "examples" / "customer_service"


def connect(path: Path) -> sqlite3.Connection:
    """A connection in autocommit mode: every write says where its transaction begins and ends
    (``BEGIN IMMEDIATE ... COMMIT``) instead of relying on the sqlite3 module's implicit ones."""
    conn = sqlite3.connect(path, isolation_level=None, timeout=10.0)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


def ensure_database(data_dir: Path | None = None) -> Path:
    """The database's path, seeding it first if the file does not exist yet."""
    folder = Path(data_dir) if data_dir is not None else default_data_dir()
    path = folder / DB_NAME
    if not path.exists():
        seed_database(path)
    return path


def seed_database(path: Path) -> Path:
    """Write a fresh database at ``path`` (replacing any there), the same one on every run."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.unlink(missing_ok=True)
    conn = connect(partial)
    try:
        conn.executescript(SCHEMA)
        conn.execute("BEGIN IMMEDIATE")
        _fill(conn, random.Random(SEED))
        conn.execute("COMMIT")
    finally:
        conn.close()
    os.replace(partial, path)
    return path


def _fill(conn: sqlite3.Connection, rng: random.Random) -> None:
    emails: set[str] = set()
    for customer_id in range(1, N_CUSTOMERS + 1):
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        email = f"{first}.{last}@example.com".lower()
        while email in emails:  # two customers with one name get numbered addresses
            email = f"{first}.{last}{rng.randint(2, 99)}@example.com".lower()
        emails.add(email)
        joined = TODAY - dt.timedelta(days=rng.randint(200, 1500))
        conn.execute(
            "INSERT INTO customers VALUES (?, ?, ?, ?, ?)",
            (customer_id, f"{first} {last}", email, rng.choice(_CITIES), joined.isoformat()),
        )
    # Orders in date order, so higher order numbers are newer.
    days_ago = sorted((rng.randint(0, 120) for _ in range(N_ORDERS)), reverse=True)
    for offset, age in enumerate(days_ago):
        order_id = FIRST_ORDER_ID + offset
        placed = TODAY - dt.timedelta(days=age)
        lines = [
            (product, rng.choice((1, 1, 1, 2, 3)), price)
            for product, price in rng.sample(_PRODUCTS, rng.choice((1, 1, 2, 3)))
        ]
        total = sum(quantity * price for _, quantity, price in lines)
        status = _status(rng, age)
        conn.execute(
            "INSERT INTO orders VALUES (?, ?, ?, ?, ?)",
            (order_id, rng.randint(1, N_CUSTOMERS), placed.isoformat(), status, total),
        )
        conn.executemany(
            "INSERT INTO order_items VALUES (?, ?, ?, ?)",
            [(order_id, *line) for line in lines],
        )
        if status in ("shipped", "delivered", "refunded"):
            shipped = placed + dt.timedelta(days=rng.randint(1, 2))
            expected = shipped + dt.timedelta(days=rng.randint(2, 6))
            delivered = None
            if status != "shipped":
                delivered = (expected + dt.timedelta(days=rng.randint(-1, 1))).isoformat()
            carrier = rng.choice(_CARRIERS)
            tracking = f"{carrier[:2].upper()}{rng.randrange(10**9, 10**10)}"
            conn.execute(
                "INSERT INTO shipments VALUES (?, ?, ?, ?, ?, ?)",
                (order_id, carrier, tracking, shipped.isoformat(), expected.isoformat(), delivered),
            )
        if status == "refunded":
            created = min(TODAY, placed + dt.timedelta(days=rng.randint(8, 20)))
            conn.execute(
                "INSERT INTO refunds (order_id, amount_cents, reason, created_on) "
                "VALUES (?, ?, ?, ?)",
                (order_id, total, rng.choice(_REFUND_REASONS), created.isoformat()),
            )


def _status(rng: random.Random, age_days: int) -> str:
    if rng.random() < 0.06:
        return "cancelled"
    if age_days <= 2:
        return "processing"
    if age_days <= 7:
        return "shipped"
    return "refunded" if rng.random() < 0.07 else "delivered"
