"""The support desk's tools: plain methods with type hints and Google docstrings, made into
fncall tools by ``SupportDesk.toolset()``.

Reads open a connection per call (the executor runs sync tools in threads of their own).
The one write, ``request_refund``, is a single ``BEGIN IMMEDIATE ... COMMIT`` transaction: the
checks, the refund row and the order's new status are one unit, recorded whole or not at all,
and two refunds of one order cannot both pass the checks. A refund the shop's rules do not
allow raises ``RefundRefused``, which the model reads back as ``"RefundRefused: <why>"``; an
unknown customer or order likewise says what exists.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from examples.customer_service.db import TODAY, connect
from examples.customer_service.faq import FaqIndex
from fncall.errors import ToolError
from fncall.tools import ToolSet

REFUND_LIMIT_CENTS = 250_00
RECENT_ORDERS = 5


class CustomerNotFound(ToolError):
    """No customer matches the name or email address."""


class OrderNotFound(ToolError):
    """No order has this number."""


class RefundRefused(ToolError):
    """The shop's rules do not allow this refund here."""


def money(cents: int) -> str:
    return f"${cents / 100:,.2f}"


class SupportDesk:
    """The tools over one database and one FAQ index.

    ``refund_limit_cents``: the largest order total refunded here; larger ones are for a person.
    ``after_refund_row``: called with the order id inside the refund's transaction, after its
    first write (the refund row) and before the second (the order's status); the tests use it
    to kill the process there and check that nothing of the refund remains.
    """

    def __init__(
        self,
        db_path: Path,
        *,
        faq: FaqIndex | None = None,
        refund_limit_cents: int = REFUND_LIMIT_CENTS,
        today: dt.date = TODAY,
    ) -> None:
        self.db_path = Path(db_path)
        self.faq = faq if faq is not None else FaqIndex()
        self.refund_limit_cents = refund_limit_cents
        self.today = today
        self.after_refund_row: Callable[[int], None] | None = None

    def toolset(self) -> ToolSet:
        return ToolSet(
            [
                self.find_customer,
                self.order_status,
                self.find_order,
                self.request_refund,
                self.search_faq,
            ]
        )

    # -- look-ups ------------------------------------------------------------------------------

    def find_customer(self, name_or_email: str) -> dict[str, Any]:
        """Find a customer by email address or name, with their most recent orders.

        Args:
            name_or_email: The customer's email address or full name, e.g. "Alice Moreau".
        """
        query = name_or_email.strip()
        with self._read() as conn:
            rows = conn.execute(
                "SELECT * FROM customers WHERE lower(email) = lower(?) OR name LIKE ? "
                "ORDER BY id LIMIT 5",
                (query, f"%{query}%"),
            ).fetchall()
            if not query or not rows:
                raise CustomerNotFound(
                    f"no customer has the email address or name {name_or_email!r}"
                )
            return {
                "customers": [
                    {
                        "customer_id": row["id"],
                        "name": row["name"],
                        "email": row["email"],
                        "city": row["city"],
                        "recent_orders": [
                            {
                                "order_id": order["id"],
                                "placed": order["placed"],
                                "status": order["status"],
                                "total": money(order["total_cents"]),
                            }
                            for order in conn.execute(
                                "SELECT * FROM orders WHERE customer_id = ? "
                                "ORDER BY id DESC LIMIT ?",
                                (row["id"], RECENT_ORDERS),
                            )
                        ],
                    }
                    for row in rows
                ]
            }

    def find_order(self, order_id: int) -> dict[str, Any]:
        """Get what an order contains: who placed it, when, its items and its total price.

        Args:
            order_id: The order number.
        """
        with self._read() as conn:
            order = self._order(conn, order_id)
            items = conn.execute(
                "SELECT * FROM order_items WHERE order_id = ?", (order_id,)
            ).fetchall()
            return {
                "order_id": order_id,
                "customer": order["name"],
                "email": order["email"],
                "placed": order["placed"],
                "status": order["status"],
                "items": [
                    f"{item['quantity']} x {item['product']} "
                    f"({money(item['unit_price_cents'])} each)"
                    for item in items
                ],
                "total": money(order["total_cents"]),
            }

    def order_status(self, order_id: int) -> dict[str, Any]:
        """Where is an order? Its delivery status, carrier, tracking number and delivery date.

        Args:
            order_id: The order number.
        """
        with self._read() as conn:
            order = self._order(conn, order_id)
            status = {"order_id": order_id, "status": order["status"]}
            shipment = conn.execute(
                "SELECT * FROM shipments WHERE order_id = ?", (order_id,)
            ).fetchone()
            if order["status"] == "processing":
                status["note"] = "not shipped yet; orders ship within 1 to 2 business days"
            elif order["status"] == "cancelled":
                status["note"] = "the order was cancelled before shipping; nothing was charged"
            if shipment is not None:
                status["carrier"] = shipment["carrier"]
                status["tracking_number"] = shipment["tracking_number"]
                status["shipped_on"] = shipment["shipped_on"]
                if shipment["delivered_on"] is None:
                    status["expected_delivery"] = shipment["expected_on"]
                else:
                    status["delivered_on"] = shipment["delivered_on"]
            if order["status"] == "refunded":
                refund = conn.execute(
                    "SELECT * FROM refunds WHERE order_id = ?", (order_id,)
                ).fetchone()
                status["refunded_on"] = refund["created_on"]
                status["refund_amount"] = money(refund["amount_cents"])
            return status

    def search_faq(self, question: str) -> dict[str, Any]:
        """Search the shop's help articles: return and refund rules, shipping, payment, warranty.

        Args:
            question: The customer's question, e.g. "how long do refunds take?".
        """
        matches = self.faq.search(question)
        if not matches:
            return {"articles": [], "note": "no help article answers this question"}
        return {
            "articles": [
                {"title": m.article.title, "text": m.article.body, "score": round(m.score, 2)}
                for m in matches
            ]
        }

    # -- the one write -------------------------------------------------------------------------

    def request_refund(self, order_id: int, reason: str) -> dict[str, Any]:
        """Refund a whole order to the customer's payment method (asks the customer to confirm).

        Args:
            order_id: The order number.
            reason: Why the customer wants the refund, in a few words.
        """
        conn = connect(self.db_path)
        try:
            # IMMEDIATE takes the write lock before the checks read, so a second refund of the
            # same order waits and then sees this one.
            conn.execute("BEGIN IMMEDIATE")
            try:
                order = self._order(conn, order_id)
                self._check_refundable(order)
                cursor = conn.execute(
                    "INSERT INTO refunds (order_id, amount_cents, reason, created_on) "
                    "VALUES (?, ?, ?, ?)",
                    (
                        order_id,
                        order["total_cents"],
                        reason.strip() or "not given",
                        self.today.isoformat(),
                    ),
                )
                if self.after_refund_row is not None:
                    self.after_refund_row(order_id)
                conn.execute("UPDATE orders SET status = 'refunded' WHERE id = ?", (order_id,))
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        finally:
            conn.close()
        return {
            "refund_id": cursor.lastrowid,
            "order_id": order_id,
            "amount": money(order["total_cents"]),
            "status": "refunded",
            "note": "the money goes back to the original payment method in 5 to 10 business days",
        }

    def refund_summary(self, order_id: int) -> str:
        """What a refund of this order would do, for the confirmation question; raises the
        error ``request_refund`` would raise for a refund it would refuse."""
        with self._read() as conn:
            order = self._order(conn, order_id)
            self._check_refundable(order)
            return f"refund {money(order['total_cents'])} for order {order_id} ({order['name']})"

    # -- helpers -------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        conn = connect(self.db_path)
        try:
            yield conn
        finally:
            conn.close()  # a sqlite3 connection's own `with` ends a transaction, not the file

    def _order(self, conn: sqlite3.Connection, order_id: int) -> sqlite3.Row:
        order = conn.execute(
            "SELECT orders.*, customers.name, customers.email FROM orders "
            "JOIN customers ON customers.id = orders.customer_id WHERE orders.id = ?",
            (order_id,),
        ).fetchone()
        if order is None:
            low, high = conn.execute("SELECT min(id), max(id) FROM orders").fetchone()
            raise OrderNotFound(
                f"there is no order {order_id}; order numbers run from {low} to {high}"
            )
        return order

    def _check_refundable(self, order: sqlite3.Row) -> None:
        order_id = order["id"]
        if order["status"] == "refunded":
            raise RefundRefused(f"order {order_id} has already been refunded")
        if order["status"] == "cancelled":
            raise RefundRefused(f"order {order_id} was cancelled, so it was never charged")
        if order["total_cents"] > self.refund_limit_cents:
            raise RefundRefused(
                f"order {order_id} totals {money(order['total_cents'])}, over the "
                f"{money(self.refund_limit_cents)} limit for refunds made here; a person from "
                "the support team must review it (within 2 business days)"
            )
