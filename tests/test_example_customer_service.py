"""examples/customer_service: the shop database, the desk's tools, the refund policy and
transaction, FAQ search with the real embedder, and the agent loop over a scripted model (one
test runs the real default model through the example's command)."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `pytest` alone puts tests/ on the path, not the repository root
    sys.path.insert(0, str(ROOT))

from examples.customer_service.agent import SYSTEM_PROMPT, ask, build_agent  # noqa: E402
from examples.customer_service.db import (  # noqa: E402
    DB_NAME,
    default_data_dir,
    ensure_database,
    seed_database,
)
from examples.customer_service.faq import FaqIndex  # noqa: E402
from examples.customer_service.tools import (  # noqa: E402
    CustomerNotFound,
    OrderNotFound,
    RefundRefused,
    SupportDesk,
)

from fncall.engine.scripted import ScriptedChat  # noqa: E402
from fncall.types import AssistantTurn, ToolCall  # noqa: E402

# Orders of the seeded database (the seed is fixed, see test_the_seed_is_deterministic).
SHIPPED = 1231  # Emeka Sato, $54.99, in transit with a tracking number
SMALL_DELIVERED = 1224  # Hana Sato, $54.99, under the refund limit
LARGE_DELIVERED = 1229  # Fatima Tanaka, $917.97 (shipped), over the refund limit
ALREADY_REFUNDED = 1208
SEEDED_REFUNDS = 16


@pytest.fixture(scope="module")
def seeded(tmp_path_factory) -> Path:
    return seed_database(tmp_path_factory.mktemp("seed") / DB_NAME)


@pytest.fixture
def db_path(seeded: Path, tmp_path: Path) -> Path:
    path = tmp_path / DB_NAME
    shutil.copy(seeded, path)
    return path


@pytest.fixture(scope="module")
def faq() -> FaqIndex:
    return FaqIndex()  # the real packaged embedder, loaded on the first search


@pytest.fixture
def desk(db_path: Path, faq: FaqIndex) -> SupportDesk:
    return SupportDesk(db_path, faq=faq)


def rows(db_path: Path, sql: str, *params) -> list[tuple]:
    conn = sqlite3.connect(db_path)
    try:
        return [tuple(row) for row in conn.execute(sql, params)]
    finally:
        conn.close()


def order_state(db_path: Path, order_id: int) -> tuple:
    status = rows(db_path, "SELECT status FROM orders WHERE id = ?", order_id)
    refunds = rows(db_path, "SELECT amount_cents FROM refunds WHERE order_id = ?", order_id)
    return status[0][0], refunds


def call(name: str, **arguments) -> AssistantTurn:
    return AssistantTurn(tool_calls=(ToolCall(name=name, arguments=arguments),))


# -- the database ---------------------------------------------------------------------------------


def test_the_seed_is_deterministic_and_holds_a_few_hundred_rows(seeded, tmp_path):
    again = seed_database(tmp_path / "again" / DB_NAME)
    dump = list(sqlite3.connect(seeded).iterdump())
    assert dump == list(sqlite3.connect(again).iterdump())
    counts = {
        table: rows(seeded, f"SELECT count(*) FROM {table}")[0][0]
        for table in ("customers", "orders", "order_items", "shipments", "refunds")
    }
    assert counts == {
        "customers": 80,
        "orders": 240,
        "order_items": 441,
        "shipments": 221,
        "refunds": 16,
    }
    # every refunded order has its refund, and no other order has one
    assert rows(
        seeded,
        "SELECT count(*) FROM orders o LEFT JOIN refunds r ON r.order_id = o.id "
        "WHERE (o.status = 'refunded') != (r.id IS NOT NULL)",
    ) == [(0,)]


def test_the_database_goes_to_a_cache_folder_and_is_seeded_once(tmp_path, monkeypatch):
    monkeypatch.setenv("FNCALL_HOME", str(tmp_path / "home"))
    assert default_data_dir() == tmp_path / "home" / "examples" / "customer_service"
    path = ensure_database(tmp_path / "data")
    assert path == tmp_path / "data" / DB_NAME and path.is_file()
    conn = sqlite3.connect(path)
    conn.execute("UPDATE orders SET status = 'cancelled' WHERE id = 1001")
    conn.commit()
    conn.close()
    ensure_database(tmp_path / "data")  # an existing database is kept, not reseeded
    assert rows(path, "SELECT status FROM orders WHERE id = 1001") == [("cancelled",)]


# -- the tools ------------------------------------------------------------------------------------


def test_look_ups_return_what_the_database_holds(desk):
    status = desk.order_status(SHIPPED)
    assert status["status"] == "shipped" and status["carrier"] and status["expected_delivery"]
    order = desk.find_order(SMALL_DELIVERED)
    assert (order["customer"], order["total"], order["status"]) == (
        "Hana Sato",
        "$54.99",
        "delivered",
    )
    found = desk.find_customer("Priya.Wang@example.com")["customers"]
    assert [c["name"] for c in found] == ["Priya Wang"]
    assert found[0]["recent_orders"][0]["order_id"] == 1230  # newest first
    assert len(desk.find_customer("Sato")["customers"]) > 1


def test_unknown_ids_say_what_exists(desk):
    with pytest.raises(OrderNotFound, match="no order 9999; order numbers run from 1001 to 1240"):
        desk.order_status(9999)
    with pytest.raises(CustomerNotFound, match=r"nobody@example\.com"):
        desk.find_customer("nobody@example.com")
    with pytest.raises(CustomerNotFound):
        desk.find_customer("   ")  # an empty query must not match everyone


def test_a_refund_records_the_row_and_the_status_together(desk, db_path):
    result = desk.request_refund(SMALL_DELIVERED, "arrived broken")
    assert (result["amount"], result["status"]) == ("$54.99", "refunded")
    assert order_state(db_path, SMALL_DELIVERED) == ("refunded", [(5499,)])
    with pytest.raises(RefundRefused, match="already been refunded"):
        desk.request_refund(SMALL_DELIVERED, "again")
    assert order_state(db_path, SMALL_DELIVERED) == ("refunded", [(5499,)])


def test_refunds_the_rules_forbid_are_refused_and_change_nothing(desk, db_path):
    with pytest.raises(RefundRefused, match=r"\$917.97, over the \$250.00 limit"):
        desk.request_refund(LARGE_DELIVERED, "changed my mind")
    assert order_state(db_path, LARGE_DELIVERED) == ("shipped", [])
    with pytest.raises(RefundRefused, match="cancelled"):
        desk.request_refund(1237, "x")
    with pytest.raises(OrderNotFound):
        desk.request_refund(9999, "x")
    assert rows(db_path, "SELECT count(*) FROM refunds") == [(SEEDED_REFUNDS,)]


KILLED_REFUND = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from examples.customer_service.faq import FaqIndex
    from examples.customer_service.tools import SupportDesk

    desk = SupportDesk(Path(sys.argv[1]), faq=FaqIndex(articles=[]))

    def pause(order_id):
        print("inside", order_id, flush=True)
        time.sleep(60)

    desk.after_refund_row = pause
    desk.request_refund(int(sys.argv[2]), "arrived broken")
    print("committed", flush=True)
    """
)


def test_a_process_killed_mid_refund_leaves_no_half_refund(db_path):
    child = subprocess.Popen(
        [sys.executable, "-c", KILLED_REFUND, str(db_path), str(SMALL_DELIVERED)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = child.stdout.readline()
        assert line.strip() == f"inside {SMALL_DELIVERED}", child.stderr.read()
        # the refund row is written, the status not yet: the process dies here
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=10)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == -signal.SIGKILL
    assert rows(db_path, "PRAGMA integrity_check") == [("ok",)]
    assert order_state(db_path, SMALL_DELIVERED) == ("delivered", [])
    assert rows(db_path, "SELECT count(*) FROM refunds") == [(SEEDED_REFUNDS,)]
    # the lock died with the process: the refund can be made again, whole
    SupportDesk(db_path, faq=FaqIndex(articles=[])).request_refund(SMALL_DELIVERED, "broken")
    assert order_state(db_path, SMALL_DELIVERED) == ("refunded", [(5499,)])


def test_an_error_inside_the_refund_rolls_it_back(desk, db_path):
    def fail(order_id: int) -> None:
        raise KeyboardInterrupt  # the user's Ctrl-C between the two writes

    desk.after_refund_row = fail
    with pytest.raises(KeyboardInterrupt):
        desk.request_refund(SMALL_DELIVERED, "arrived broken")
    assert order_state(db_path, SMALL_DELIVERED) == ("delivered", [])


@pytest.mark.parametrize(
    ("question", "article"),
    [
        ("my parcel never showed up even though tracking says it was delivered", "not-received"),
        ("how many days until the money is back on my card?", "refund-timing"),
        ("the screen was cracked when I opened the box", "damaged"),
        ("can I send back headphones I opened?", "returns-window"),
        ("do you deliver to Japan?", "international"),
        ("I lost my login details", "password"),
        ("do I have to pay import fees in Canada", "customs"),
    ],
)
def test_faq_search_finds_the_article_for_a_paraphrase(faq, question, article):
    matches = faq.search(question)
    assert matches and matches[0].article.id == article


def test_faq_search_finds_nothing_for_a_question_outside_the_shop(desk):
    assert desk.search_faq("What is the capital of France?") == {
        "articles": [],
        "note": "no help article answers this question",
    }
    found = desk.search_faq("Can I pay with Apple Pay?")["articles"]
    assert found[0]["title"] == "Which payment methods do you accept?"


# -- the agent loop over a scripted model ---------------------------------------------------------


def agent_for(desk, script, answers=()):
    asked: list[str] = []
    replies = list(answers)

    def ask_person(summary: str) -> bool:
        asked.append(summary)
        return replies.pop(0)

    agent = build_agent(ScriptedChat(script), desk, ask_person=ask_person)
    return agent, asked


def test_look_up_then_refund_then_answer(desk, db_path):
    def refund_after_reading_the_order(messages, tools):
        assert messages[-1].role == "tool" and '"total": "$54.99"' in messages[-1].content
        return call("request_refund", order_id=SMALL_DELIVERED, reason="arrived broken")

    def answer_from_the_refund(messages, tools):
        assert messages[-1].name == "request_refund"
        assert '"amount": "$54.99"' in messages[-1].content
        return "I refunded $54.99 for order 1224; expect it in 5 to 10 business days."

    agent, asked = agent_for(
        desk,
        [
            call("find_order", order_id=SMALL_DELIVERED),
            refund_after_reading_the_order,
            answer_from_the_refund,
        ],
        answers=[True],
    )
    run = ask(agent, "Order 1224 arrived broken. Please refund it.")

    assert [c.name for c in run.tool_calls] == ["find_order", "request_refund"]
    assert all(r.ok for r in run.tool_results)
    assert run.final.startswith("I refunded $54.99")
    assert asked == ["refund $54.99 for order 1224 (Hana Sato)"]
    assert order_state(db_path, SMALL_DELIVERED) == ("refunded", [(5499,)])
    first = agent.model.requests[0]
    assert first.messages[0].content == SYSTEM_PROMPT
    assert {t.name for t in first.tools} == {
        "find_customer",
        "find_order",
        "order_status",
        "request_refund",
        "search_faq",
    }


def test_an_unconfirmed_refund_is_refused_by_the_policy(desk, db_path):
    def explain(messages, tools):
        assert messages[-1].content.startswith("Error: PermissionDenied: call to 'request_refund'")
        return "No refund was made, since you did not confirm it."

    agent, asked = agent_for(
        desk,
        [call("request_refund", order_id=SMALL_DELIVERED, reason="broken"), explain],
        answers=[False],
    )
    run = ask(agent, "Please refund order 1224.")
    assert asked == ["refund $54.99 for order 1224 (Hana Sato)"]
    assert run.final == "No refund was made, since you did not confirm it."
    assert order_state(db_path, SMALL_DELIVERED) == ("delivered", [])


def test_a_refund_over_the_limit_is_refused_without_asking(desk, db_path):
    def explain(messages, tools):
        assert "RefundRefused: order 1229 totals $917.97" in messages[-1].content
        return "That order is over our $250 limit; a colleague will review it."

    agent, asked = agent_for(
        desk, [call("request_refund", order_id=LARGE_DELIVERED, reason="changed my mind"), explain]
    )
    run = ask(agent, "I changed my mind about order 1229, please refund it.")
    assert asked == []  # nobody is asked to confirm a refund that cannot happen
    assert run.stop_reason == "final_answer" and "colleague" in run.final
    assert order_state(db_path, LARGE_DELIVERED) == ("shipped", [])


def test_unknown_ids_and_bad_arguments_reach_the_model_as_errors(desk):
    def after_unknown(messages, tools):
        assert messages[-1].content == (
            "Error: OrderNotFound: there is no order 9999; order numbers run from 1001 to 1240"
        )
        return call("order_status", order_id="#1231")  # not an integer

    def after_bad_argument(messages, tools):
        assert messages[-1].content.startswith("Error: ArgumentError:")
        return "I could not find order 9999. Could you check the number?"

    agent, _ = agent_for(
        desk, [call("order_status", order_id=9999), after_unknown, after_bad_argument]
    )
    run = ask(agent, "Where is my order 9999?")
    assert run.final == "I could not find order 9999. Could you check the number?"
    assert [r.ok for r in run.tool_results] == [False, False]


def test_a_question_no_tool_answers_gets_a_plain_answer(desk, db_path):
    agent, _ = agent_for(desk, ["Rome has many histories; try Mary Beard's SPQR."])
    run = ask(agent, "Can you recommend a good book about the history of Rome?")
    assert (run.tool_calls, run.stop_reason) == ([], "final_answer")
    assert run.final.startswith("Rome")


# -- the real default model, through the example's command --------------------------------------


@pytest.mark.model
def test_the_command_answers_a_tracking_question_from_the_database(tmp_path):
    pytest.importorskip("llama_cpp")
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "examples.customer_service",
            "--data-dir",
            str(tmp_path),
            "--question",
            f"Where is my order {SHIPPED}?",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr
    status = SupportDesk(tmp_path / DB_NAME, faq=FaqIndex(articles=[])).order_status(SHIPPED)
    assert f"call    order_status(order_id={SHIPPED})" in out.stdout
    answer = out.stdout.split("\nA: ", 1)[1].split("\n", 1)[0]
    assert status["expected_delivery"] in answer or status["tracking_number"] in answer, answer
