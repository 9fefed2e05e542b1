"""The evaluation runner: scoring, the JSON Lines file written as it goes, resuming, workers
and processes."""

from __future__ import annotations

import json
import multiprocessing
import os
import socket
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from fncall.engine.base import ChatCapabilities, ChatModel
from fncall.engine.scripted import ScriptedChat
from fncall.errors import ModelOutputError, RunStopped, UserError
from fncall.evaluate.data import Case, load_cases
from fncall.evaluate.runner import LocalModelSpec, read_results, run_eval
from fncall.types import AssistantTurn, Message, Tool, ToolCall
from test_eval_data import write_bfcl_folder

WRONG = {"parallel_0"}  # the oracle answers this one with a single call


@pytest.fixture
def cases(tmp_path: Path) -> list[Case]:
    folder = write_bfcl_folder(tmp_path / "data")
    return load_cases(["simple_python", "multiple", "parallel", "irrelevance"], data_dir=folder)


def oracle(cases: Sequence[Case]):
    """A scripted turn: the first acceptable answer, under the names the model was shown."""
    by_question = {c.messages[-1].content: c for c in cases}

    def answer(messages: Sequence[Message], tools: Sequence[Tool]) -> AssistantTurn:
        case = by_question[messages[-1].content]
        shown = {original: safe for safe, original in case.name_map.items()}
        calls = []
        for truth in case.ground_truth:
            name, params = next(iter(truth.items()))
            arguments = {p: v[0] for p, v in params.items() if v[0] != ""}
            calls.append(ToolCall(name=shown.get(name, name), arguments=arguments))
        if case.id in WRONG:
            calls = calls[:1]
        text = json.dumps([{"name": c.name, "arguments": dict(c.arguments)} for c in calls])
        if not calls:
            return AssistantTurn(content="I cannot help with that.", raw="I cannot help with that.")
        return AssistantTurn(tool_calls=tuple(calls), raw=text)

    return answer


def boom(messages: Sequence[Message], tools: Sequence[Tool]) -> AssistantTurn:
    raise ConnectionError("the connection dropped")


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_run_scores_each_case_and_writes_one_line_each(cases: list[Case], tmp_path: Path) -> None:
    model = ScriptedChat([oracle(cases)] * len(cases))
    out = tmp_path / "run" / "results.jsonl"
    result = run_eval(model, cases, out_path=out, progress=False)
    assert [r.id for r in result.results] == [c.id for c in cases]
    assert result.accuracy == pytest.approx(5 / 6)
    assert result.per_category == {
        "simple_python": 1.0,
        "multiple": 1.0,
        "parallel": 0.0,
        "irrelevance": 1.0,
    }
    rows = lines(out)
    assert [r["id"] for r in rows] == [c.id for c in cases]
    first = rows[0]
    assert first["calls"] == [{"name": "geometry.area", "arguments": {"base": 10.0, "height": 5}}]
    assert first["valid"] and first["expected"] == ["geometry.area"] and first["raw"]
    assert rows[3]["error_type"] == "wrong_count"
    assert rows[4]["calls"] == [] and rows[4]["raw"] == "I cannot help with that."
    request = model.requests[0]
    assert request.tool_choice is not None and request.tool_choice.mode == "auto"
    assert request.parallel_tool_calls and request.tools[0].name == "geometry_area"


def test_interrupted_run_resumes_without_redoing_cases(cases: list[Case], tmp_path: Path) -> None:
    out = tmp_path / "results.jsonl"
    first = ScriptedChat([oracle(cases)] * 3 + [boom] * 3)
    with pytest.raises(RunStopped, match="the 3 finished case"):  # 3 failures in a row stop it
        run_eval(first, cases, out_path=out, progress=False)
    assert [r["id"] for r in lines(out)] == [c.id for c in cases[:3]]  # failures not written

    second = ScriptedChat([oracle(cases)] * 3)
    result = run_eval(second, cases, out_path=out, progress=False)
    assert result.resumed == 3 and second.remaining == 0
    asked = [r.messages[-1].content for r in second.requests]
    assert asked == [c.messages[-1].content for c in cases[3:]]
    ids = [r["id"] for r in lines(out)]
    assert sorted(ids) == sorted(c.id for c in cases) and len(ids) == len(set(ids))
    assert len(result.results) == len(cases)


def test_truncated_last_line_is_redone(cases: list[Case], tmp_path: Path) -> None:
    out = tmp_path / "results.jsonl"
    run_eval(ScriptedChat([oracle(cases)] * len(cases)), cases, out_path=out, progress=False)
    text = out.read_text()
    out.write_text(text[: text.rstrip("\n").rfind("\n") + 1] + '{"id": "irrelevance_1", "cat')
    assert len(read_results(out)) == len(cases) - 1
    again = ScriptedChat([oracle(cases)])
    result = run_eval(again, cases, out_path=out, progress=False)
    assert result.resumed == len(cases) - 1 and again.remaining == 0
    assert [r["id"] for r in lines(out)] == [c.id for c in cases]


def test_corrupt_line_inside_the_file_is_an_error(cases: list[Case], tmp_path: Path) -> None:
    out = tmp_path / "results.jsonl"
    run_eval(ScriptedChat([oracle(cases)] * len(cases)), cases, out_path=out, progress=False)
    rows = out.read_text().splitlines()
    rows[1] = "not json"
    out.write_text("\n".join(rows) + "\n")
    with pytest.raises(UserError, match=r"results\.jsonl:2: not a result line"):
        run_eval(ScriptedChat(), cases, out_path=out, progress=False)


def test_undecodable_output_is_scored_unparseable(cases: list[Case], tmp_path: Path) -> None:
    def garbled(messages: Sequence[Message], tools: Sequence[Tool]) -> AssistantTurn:
        raise ModelOutputError("no JSON found", raw="[{name: area")

    model = ScriptedChat([garbled, garbled])
    picked = [cases[0], cases[4]]  # one that needs a call, one irrelevance case
    result = run_eval(model, picked, out_path=tmp_path / "r.jsonl", progress=False)
    needs_call, irrelevant = result.results
    assert needs_call.calls is None and needs_call.verdict.error_type == "unparseable"
    assert needs_call.raw == "[{name: area"
    assert irrelevant.verdict.valid  # nothing decoded: no call, as wanted


class ConcurrencyProbe(ChatModel):
    """A model that answers after a short sleep and records how many requests overlapped."""

    def __init__(
        self, cases: Sequence[Case], *, thread_safe: bool, failing: Sequence[str] = ()
    ) -> None:
        self.capabilities = ChatCapabilities(thread_safe=thread_safe)
        self.answer = oracle(cases)
        self.failing = set(failing)
        self.active = 0
        self.most = 0
        self.guard = threading.Lock()

    def complete(self, messages, tools=(), *, tool_choice=None, parallel_tool_calls=True, **kw):
        with self.guard:
            self.active += 1
            self.most = max(self.most, self.active)
        try:
            time.sleep(0.03)
            if messages[-1].content in self.failing:
                raise ConnectionError("lost")
            return self.answer(messages, tools)
        finally:
            with self.guard:
                self.active -= 1


def test_workers_run_thread_safe_models_concurrently(cases: list[Case], tmp_path: Path) -> None:
    safe = ConcurrencyProbe(cases, thread_safe=True)
    result = run_eval(safe, cases, out_path=tmp_path / "a.jsonl", workers=4, progress=False)
    assert safe.most > 1 and result.accuracy == pytest.approx(5 / 6)
    assert sorted(r["id"] for r in lines(tmp_path / "a.jsonl")) == sorted(c.id for c in cases)
    unsafe = ConcurrencyProbe(cases, thread_safe=False)
    run_eval(unsafe, cases, out_path=tmp_path / "b.jsonl", workers=4, progress=False)
    assert unsafe.most == 1  # serialised behind a lock


@pytest.mark.parametrize("workers", [1, 2])
def test_a_case_that_fails_alone_is_scored_as_a_model_error(
    cases: list[Case], tmp_path: Path, workers: int
) -> None:
    model = ConcurrencyProbe(cases, thread_safe=True, failing=[cases[1].messages[-1].content])
    result = run_eval(model, cases, out_path=tmp_path / "e.jsonl", workers=workers, progress=False)
    failed = result.results[1]
    assert failed.verdict.error_type == "model_error" and failed.calls is None
    assert failed.verdict.message == "ConnectionError: lost"
    assert sorted(r["id"] for r in lines(tmp_path / "e.jsonl")) == sorted(c.id for c in cases)


@pytest.mark.parametrize("workers", [1, 3])
def test_failures_in_a_row_stop_the_run(cases: list[Case], tmp_path: Path, workers: int) -> None:
    model = ConcurrencyProbe(
        cases, thread_safe=True, failing=[c.messages[-1].content for c in cases]
    )
    expected = r"3 cases in a row failed, the last with ConnectionError: lost; the 0 finished"
    with pytest.raises(RunStopped, match=expected + r" case\(s\) are saved in .*c\.jsonl") as info:
        run_eval(model, cases, out_path=tmp_path / "c.jsonl", workers=workers, progress=False)
    assert isinstance(info.value.__cause__, ConnectionError)
    assert lines(tmp_path / "c.jsonl") == []


@dataclass(frozen=True)
class OracleSpec(LocalModelSpec):
    """A model recipe that spawned processes can rebuild: the oracle over a BFCL folder. Each
    process that loads it leaves a file named after its pid in ``marks``."""

    data_dir: str = ""
    marks: str = ""
    broken: str = ""  # load fails with this message
    die_on: str = ""  # the process exits on this case's question, as if killed
    pause: float = 0.2  # seconds per answer: long enough for both processes to take cases

    def install(self) -> None:
        pass

    def __call__(self) -> ScriptedChat:
        (Path(self.marks) / str(os.getpid())).touch()
        if self.broken:
            raise UserError(self.broken)
        cases = load_cases(["simple_python", "multiple", "parallel", "irrelevance"],
                           data_dir=self.data_dir)  # fmt: skip
        answer = oracle(cases)

        def maybe_die(messages: Sequence[Message], tools: Sequence[Tool]) -> AssistantTurn:
            if self.die_on and messages[-1].content == self.die_on:
                os._exit(1)
            time.sleep(self.pause)
            return answer(messages, tools)

        return ScriptedChat([maybe_die] * len(cases))


def test_processes_each_load_the_model_and_score_like_one(
    cases: list[Case], tmp_path: Path
) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    spec = OracleSpec("oracle", data_dir=str(tmp_path / "data"), marks=str(marks))
    one = run_eval(spec, cases, out_path=tmp_path / "one.jsonl", progress=False)
    assert [p.name for p in marks.iterdir()] == [str(os.getpid())]  # loaded here
    for path in marks.iterdir():
        path.unlink()
    two = run_eval(spec, cases, out_path=tmp_path / "two.jsonl", processes=2, progress=False)
    loaded_in = {p.name for p in marks.iterdir()}
    assert len(loaded_in) == 2 and str(os.getpid()) not in loaded_in
    assert [r.to_json() | {"latency_s": 0} for r in two.results] == [
        r.to_json() | {"latency_s": 0} for r in one.results
    ]
    assert sorted(r["id"] for r in lines(tmp_path / "two.jsonl")) == sorted(c.id for c in cases)
    again = run_eval(spec, cases, out_path=tmp_path / "two.jsonl", processes=2, progress=False)
    assert again.resumed == len(cases) and len(lines(tmp_path / "two.jsonl")) == len(cases)


def test_processes_need_a_model_recipe_and_report_load_errors(
    cases: list[Case], tmp_path: Path
) -> None:
    with pytest.raises(UserError, match=r"processes=2 needs a LocalModelSpec .* got ScriptedChat"):
        run_eval(ScriptedChat(), cases, out_path=tmp_path / "x.jsonl", processes=2)
    spec = OracleSpec("oracle", marks=str(tmp_path), broken="no model named 'oracle'")
    with pytest.raises(RunStopped, match="the last with UserError: no model named 'oracle'"):
        run_eval(spec, cases, out_path=tmp_path / "y.jsonl", processes=2, progress=False)
    assert lines(tmp_path / "y.jsonl") == []


def test_a_process_that_dies_stops_the_run_and_keeps_finished_cases(
    cases: list[Case], tmp_path: Path
) -> None:
    spec = OracleSpec(
        "oracle", data_dir=str(tmp_path / "data"), marks=str(tmp_path),
        die_on=cases[-1].messages[-1].content,
    )  # fmt: skip
    out = tmp_path / "d.jsonl"
    with pytest.raises(RunStopped, match="an evaluation process died") as info:
        run_eval(spec, cases, out_path=out, processes=2, progress=False, max_consecutive_errors=1)
    kept = [row["id"] for row in lines(out)]
    assert cases[-1].id not in kept
    assert f"the {len(kept)} finished case(s) are saved" in str(info.value)
    resumed = run_eval(replace(spec, die_on=""), cases, out_path=out, progress=False)
    assert resumed.resumed == len(kept) and resumed.accuracy == pytest.approx(5 / 6)


def test_constrained_needs_a_model_with_the_switch(cases: list[Case], tmp_path: Path) -> None:
    with pytest.raises(UserError, match="constrained=True needs a local model"):
        run_eval(ScriptedChat(), cases, out_path=tmp_path / "x.jsonl", constrained=True)

    from fncall.engine.scripted import ScriptedEngine
    from fncall.pipeline import LocalChat

    engine = ScriptedEngine(["No function fits."])
    model = LocalChat(engine, format="json", constrained=True)
    run_eval(model, cases[:1], out_path=tmp_path / "y.jsonl", constrained=False, progress=False)
    assert model.constrained is True  # the run used a switched copy
    assert engine.requests[0].constraint is None  # ... which decoded without a grammar


def test_unreachable_endpoint_fails_before_any_case(cases: list[Case], tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again once the block ends: nothing listens

    from fncall.engine.remote import RemoteChat

    model = RemoteChat(f"http://127.0.0.1:{port}/v1", "m")
    with pytest.raises(UserError, match=f"cannot reach endpoint http://127.0.0.1:{port}/v1"):
        run_eval(model, cases, out_path=tmp_path / "z.jsonl", progress=False)
    assert not (tmp_path / "z.jsonl").exists()


def test_local_chat_pipeline_with_constrained_switched_off(tmp_path: Path) -> None:
    from fncall.engine.scripted import ScriptedEngine
    from fncall.pipeline import LocalChat

    cases = load_cases(["simple_python", "irrelevance"], data_dir=write_bfcl_folder(tmp_path))
    engine = ScriptedEngine(
        [
            '{"name": "geometry_area", "arguments": {"base": 10, "height": 5}}',
            '{"name": "get_weather", "arguments": {"city": "paris"}}',
            "I cannot tell jokes.",
            '{"name": "geometry_area", "arguments": {"base": ',  # cut off: undecodable
        ]
    )
    model = LocalChat(engine, format="json", constrained=True)
    result = run_eval(
        model, cases, out_path=tmp_path / "r.jsonl", constrained=False, progress=False
    )
    assert all(r.constraint is None for r in engine.requests)
    assert [r.verdict.valid for r in result.results] == [True, True, True, True]
    assert result.results[0].calls[0].name == "geometry.area"  # type: ignore[index]
    assert result.results[3].calls is None  # unparseable; fine for an irrelevance case


def _run_in_processes(spec: OracleSpec, cases: list[Case], out: str) -> None:
    run_eval(spec, cases, out_path=out, processes=2, progress=False)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has exited; nobody may be reaping it in a container


def test_processes_end_when_the_run_is_killed(cases: list[Case], tmp_path: Path) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    spec = OracleSpec("oracle", data_dir=str(tmp_path / "data"), marks=str(marks), pause=60)
    context = multiprocessing.get_context("spawn")
    run = context.Process(target=_run_in_processes, args=(spec, cases, str(tmp_path / "k.jsonl")))
    run.start()
    deadline = time.monotonic() + 60
    while len(list(marks.iterdir())) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    workers = [int(p.name) for p in marks.iterdir()]
    assert len(workers) == 2 and all(_alive(pid) for pid in workers)
    run.kill()  # SIGKILL: the run cannot clean up after itself
    run.join()
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(pid) for pid in workers)  # not left waiting, each with a model loaded


def test_hostile_model_output_is_scored_and_the_run_goes_on(tmp_path: Path) -> None:
    """Issue 20, item 6: a RecursionError or ValueError from parsing the model's output stopped
    an evaluation (RunStopped), and again on every resume; it is now an unparseable answer."""
    from fncall.engine.scripted import ScriptedEngine
    from fncall.pipeline import LocalChat

    cases = load_cases(["simple_python", "irrelevance"], data_dir=write_bfcl_folder(tmp_path))
    hostile = [
        "[" * 1000 + "]" * 1000,
        '[{"name": "get_weather", "arguments": {"city": ' + "9" * 5001 + "}}]",
        '{"a": ' * 1000 + "1" + "}" * 1000,
        '{"name": "geometry_area", "arguments": {"base": ' + "1" * 5001 + "}}",
    ]
    engine = ScriptedEngine(hostile[: len(cases)])
    model = LocalChat(engine, format="json", constrained=False, judge=None, max_tokens=10_000)
    result = run_eval(model, cases, out_path=tmp_path / "r.jsonl", progress=False)
    assert len(result.results) == len(cases)
    assert all(r.calls is None for r in result.results)
    assert all(r.raw in hostile for r in result.results)
    assert {r.verdict.error_type for r in result.results if not r.verdict.valid} == {"unparseable"}


class FlakyServer(ChatModel):
    """Fails on ``alone`` questions always (a prompt too long, say) and on every question while
    ``down``; after ``interrupt_after`` requests it raises KeyboardInterrupt (Ctrl-C)."""

    def __init__(self, alone: set[str], *, down_from: int | None = None, interrupt_after=None):
        self.capabilities = ChatCapabilities(thread_safe=True)
        self.alone, self.down_from, self.interrupt_after = alone, down_from, interrupt_after
        self.asked: list[str] = []

    def complete(self, messages, tools=(), *, tool_choice=None, parallel_tool_calls=True, **kw):
        question = messages[-1].content
        self.asked.append(question)
        if self.interrupt_after is not None and len(self.asked) > self.interrupt_after:
            raise KeyboardInterrupt
        if question in self.alone or (
            self.down_from is not None and len(self.asked) > self.down_from
        ):
            raise ConnectionError("lost")
        return AssistantTurn(content="no", raw="no")


@pytest.mark.parametrize("stop", ["failures in a row", "Ctrl-C"])
def test_a_resume_finishes_when_cases_failed_alone_before(
    cases: list[Case], tmp_path: Path, stop: str
) -> None:
    """Issue 20, item 11: cases that failed alone were kept aside until the end of the run; a
    stopped or interrupted run lost them, and every resume asked them first, one after the other:
    three failures in a row, RunStopped, forever. They are written as soon as a success shows that
    they failed alone, so the resume goes on."""
    many = [
        replace(
            cases[i % len(cases)], id=f"case_{i}", messages=(Message(role="user", content=f"q{i}"),)
        )
        for i in range(30)
    ]
    alone = {f"q{i}" for i in range(1, 30, 4)}  # q1, q5, q9, ...: one in four fails alone
    out = tmp_path / "results.jsonl"
    if stop == "Ctrl-C":
        first = FlakyServer(alone, interrupt_after=20)
        with pytest.raises(KeyboardInterrupt):
            run_eval(first, many, out_path=out, progress=False)
    else:
        first = FlakyServer(alone, down_from=20)  # the server goes away after 20 requests
        with pytest.raises(RunStopped):
            run_eval(first, many, out_path=out, progress=False)
    written = {r["id"] for r in lines(out)}

    second = FlakyServer(alone)  # the server is back; the cases that fail alone still do
    result = run_eval(second, many, out_path=out, progress=False)
    assert len(result.results) == 30
    assert not set(second.asked) & {f"q{i}" for i in range(20)}  # none asked again
    errors = sorted(r.id for r in result.results if r.verdict.error_type == "model_error")
    assert errors == sorted(f"case_{i}" for i in range(1, 30, 4))
    ids = [r["id"] for r in lines(out)]
    assert sorted(ids) == sorted(c.id for c in many)
    assert {"case_1", "case_5", "case_9", "case_13", "case_17"} <= written
