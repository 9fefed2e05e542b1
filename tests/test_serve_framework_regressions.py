"""What agent frameworks send that ``fncall serve`` refused (issue 21), tested without them: each
case here was found by a framework test (``tests/test_serve_<framework>.py``) and fails on the
commit before its fix."""

from __future__ import annotations

import httpx2 as httpx

from fncall.engine.scripted import ScriptedChat
from serve_frameworks_support import ANSWER, WEATHER_JSON, paris_call, serve


def test_a_streamed_tool_call_sent_back_with_its_index_is_accepted() -> None:
    # LlamaIndex (through litellm) sends back the calls it assembled from streamed chunks as
    # they are, each with the "index" its chunks carried: it was a 400 naming
    # messages[1].tool_calls[0].index, which stopped FunctionAgent after its first tool call.
    model = ScriptedChat().enqueue(ANSWER)
    call = {
        "index": 0,
        "id": "call_1",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
    }
    messages = [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_1", "content": WEATHER_JSON},
    ]
    with serve(model) as server:
        reply = httpx.post(
            server.base_url + "/chat/completions",
            json={"model": "scripted-test", "messages": messages},
            timeout=10,
        )
    assert reply.status_code == 200, reply.text
    assert reply.json()["choices"][0]["message"]["content"] == ANSWER
    (seen_call,) = model.requests[0].messages[1].tool_calls
    assert seen_call == paris_call().tool_calls[0]
