"""The playground page in headless Chromium (Debian's ``chromium`` package, driven by Playwright).

Skipped when ``/usr/bin/chromium`` or the ``playwright`` package is missing; install both with
``apt-get install -y chromium`` and the ``dev`` extra. Never ``playwright install``: browsers
cannot be downloaded here. The screenshot lands in ``test-artifacts/playground.png``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from fncall.engine.scripted import ScriptedChat
from fncall.serve import create_app
from fncall.serve.testing import BackgroundServer
from fncall.types import AssistantTurn, Message, Tool, ToolCall

CHROMIUM = os.environ.get("FNCALL_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"

if not Path(CHROMIUM).is_file():
    pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install -y chromium)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")

pytestmark = pytest.mark.slow


def weather_then_answer() -> ScriptedChat:
    def answer(messages: Sequence[Message], tools: Sequence[Tool]) -> str:
        result = json.loads(messages[-1].content or "{}")
        return f"It is {result['temperature']} degrees and {result['sky']} in {result['city']}."

    return ScriptedChat(
        [
            AssistantTurn(
                tool_calls=(
                    ToolCall(name="get_weather", arguments={"city": "Paris", "unit": "celsius"}),
                )
            ),
            answer,
        ]
    )


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with sync_api.sync_playwright() as playwright:
        instance = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield instance
        instance.close()


@pytest.mark.parametrize("stream", [True, False])
def test_playground_renders_a_tool_call(browser: object, stream: bool) -> None:
    model = weather_then_answer()
    with BackgroundServer(create_app(model, model_name="scripted-demo")) as server:
        page = browser.new_page(viewport={"width": 1200, "height": 760})
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(server.base_url + "/")
        page.wait_for_selector("#status:has-text('connected')")
        assert page.locator("#model").input_value() == "scripted-demo"
        if not stream:
            page.uncheck("#stream")
        page.select_option("#tool-choice", "function:get_weather")
        page.fill("#question", "What's the weather in Paris?")
        page.click("#send")

        card = page.locator(".call").first
        card.wait_for()
        assert "get_weather" in card.locator(".name").inner_text()
        assert json.loads(card.locator(".args").inner_text()) == {
            "city": "Paris",
            "unit": "celsius",
        }
        mocked = card.locator(".result textarea").input_value()
        assert json.loads(mocked)["city"] == "Paris"
        page.click("text=Send tool results")
        page.wait_for_selector(".msg.assistant:has-text('degrees')")
        assert "21 degrees and sunny in Paris" in page.locator(".msg.assistant").last.inner_text()
        if stream:
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "playground.png"), full_page=True)
        page.close()
    assert errors == []
    first, second = model.requests
    assert first.streamed is stream and [t.name for t in first.tools] == ["get_weather", "get_time"]
    assert first.tool_choice is not None and first.tool_choice.allowed == ("get_weather",)
    assert [m.role for m in second.messages] == ["user", "assistant", "tool"]


def test_tools_editor_validates(browser: object) -> None:
    with BackgroundServer(create_app(ScriptedChat(), model_name="scripted-demo")) as server:
        page = browser.new_page()
        page.goto(server.base_url + "/")
        page.fill("#tools-json", '[{"type": "function", "function": {"name": "bad name"}}]')
        assert "function.name" in page.locator("#tools-error").inner_text()
        page.fill("#tools-json", "[{")
        assert "not valid JSON" in page.locator("#tools-error").inner_text()
        page.select_option("#tool-set", "calculator")
        assert page.locator("#tools-error").inner_text() == ""
        assert "add, multiply" in page.locator("#tools-summary").inner_text()
        page.close()
