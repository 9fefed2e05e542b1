"""``fncall eval``: clear errors up front, and a full run / resume / report / compare cycle."""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

import fncall.cli.eval as eval_cli
from fncall.cli import main
from fncall.engine.scripted import ScriptedChat
from fncall.evaluate.data import load_cases
from test_eval_data import write_bfcl_folder
from test_eval_runner import oracle


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["eval", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_unknown_category_lists_the_accepted_ones(capsys, tmp_path: Path) -> None:
    code, _, err = run_cli(
        capsys, "run", "--model", "x", "--categories", "simple", "--out", str(tmp_path / "r")
    )
    assert code == 2
    assert "unknown BFCL category 'simple'; accepted: simple_python, multiple" in err
    assert not (tmp_path / "r").exists()


def test_malformed_data_file_names_file_and_line(capsys, tmp_path: Path) -> None:
    folder = write_bfcl_folder(tmp_path / "data")
    (folder / "BFCL_v4_multiple.json").write_text("{broken\n")
    code, _, err = run_cli(
        capsys, "run", "--model", "x", "--categories", "multiple",
        "--data-dir", str(folder), "--out", str(tmp_path / "r"),
    )  # fmt: skip
    assert code == 2 and "BFCL_v4_multiple.json:1: not valid JSON" in err


def test_unknown_case_id_is_reported_before_any_case(capsys, tmp_path: Path) -> None:
    folder = write_bfcl_folder(tmp_path / "data")
    code, _, err = run_cli(
        capsys, "run", "--model", "x", "--categories", "irrelevance", "--ids", "irrelevance_9999",
        "--data-dir", str(folder), "--out", str(tmp_path / "r"),
    )  # fmt: skip
    assert code == 2 and "case id 'irrelevance_9999' not found in the categories irrelevance" in err
    assert not (tmp_path / "r").exists()


def test_unreachable_endpoint_is_reported_before_any_case(capsys, tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens once the socket is closed
    folder = write_bfcl_folder(tmp_path / "data")
    code, _, err = run_cli(
        capsys, "run", "--endpoint", f"http://127.0.0.1:{port}/v1", "--categories", "irrelevance",
        "--data-dir", str(folder), "--out", str(tmp_path / "r"),
    )  # fmt: skip
    assert code == 2
    assert f"cannot reach endpoint http://127.0.0.1:{port}/v1" in err
    assert not (tmp_path / "r").exists()


def test_a_model_is_required(capsys, tmp_path: Path) -> None:
    code, _, err = run_cli(capsys, "run", "--out", str(tmp_path / "r"))
    assert code == 2 and "--model NAME|PATH or --endpoint URL" in err


def test_run_resume_report_and_compare(capsys, tmp_path: Path, monkeypatch) -> None:
    folder = write_bfcl_folder(tmp_path / "data")
    cases = load_cases(["simple_python", "multiple", "parallel", "irrelevance"], data_dir=folder)
    built: list[ScriptedChat] = []

    def fake_model(args: Any, api_key: str | None) -> ScriptedChat:
        built.append(ScriptedChat([oracle(cases)] * len(cases)))
        return built[-1]

    monkeypatch.setattr(eval_cli, "_build_model", fake_model)
    out = tmp_path / "runs" / "tiny"
    argv = ["run", "--model", "tiny", "--categories", "non_live", "--data-dir", str(folder),
            "--out", str(out), "--no-progress"]  # fmt: skip
    # "non_live" includes parallel_multiple, which the tiny folder lacks: a clear error.
    code, _, err = run_cli(capsys, *argv)
    assert code == 2 and "no data file for category 'parallel_multiple'" in err
    argv[4] = "simple_python,multiple,parallel,irrelevance"
    code, out_text, _ = run_cli(capsys, *argv)
    assert code == 0
    assert "## Summary (BFCL)" in out_text and "| parallel | 1 | 0 | 0.0% |" in out_text
    assert "## Well-formed outputs" in out_text and "Unfinished" not in out_text
    assert {p.name for p in out.iterdir()} == {
        "meta.json", "results.jsonl", "report.md", "report.json"
    }  # fmt: skip
    assert json.loads((out / "meta.json").read_text())["categories"] == [
        "simple_python", "multiple", "parallel", "irrelevance"
    ]  # fmt: skip

    code, _, err = run_cli(capsys, *argv)  # everything is done: nothing is asked again
    assert code == 0 and "resumed: 6 case(s)" in err and built[-1].requests == []

    code, _, err = run_cli(capsys, *[a if a != "tiny" else "other" for a in argv])
    assert code == 2 and "holds another run (model: 'tiny' -> 'other')" in err
    assert json.loads((out / "meta.json").read_text())["count"] == "auto"
    code, _, err = run_cli(capsys, *argv, "--count", "-2")
    assert code == 2 and "holds another run (count: 'auto' -> 'threshold -2.0')" in err
    with pytest.raises(SystemExit) as exited:  # argparse: usage and the message, no traceback
        run_cli(capsys, *argv, "--count", "few")
    err = capsys.readouterr().err
    assert exited.value.code == 2
    assert "--count: expected auto, off or a number (the threshold), got 'few'" in err
    assert json.loads((out / "meta.json").read_text())["count_coverage"] == "auto"
    code, _, err = run_cli(capsys, *argv, "--count-coverage", "2,1")
    assert code == 2
    assert "holds another run (count_coverage: 'auto' -> 'more 2.0, fewer 1.0')" in err
    for bad in ("2", "2,-1", "a,b", "nan,1"):
        with pytest.raises(SystemExit):
            run_cli(capsys, *argv, "--count-coverage", bad)
        err = capsys.readouterr().err
        assert "--count-coverage: expected auto, off or MORE,FEWER (two log-odds >= 0" in err
        assert f"got {bad!r}" in err

    chosen = [cases[-1].id, cases[0].id]  # re-score two cases in a folder of their own
    code, out_text, _ = run_cli(capsys, *argv[:-3], "--out", str(out) + "-ids", "--ids", *chosen)
    scored = (Path(str(out) + "-ids") / "results.jsonl").read_text().splitlines()
    assert code == 0 and sorted(json.loads(line)["id"] for line in scored) == sorted(chosen)
    assert "Unfinished" not in out_text  # the run planned those two cases, not the categories

    code, out_text, _ = run_cli(capsys, "report", str(out), "--json")
    assert code == 0 and json.loads(out_text)["categories"]["multiple"]["accuracy"] == 1.0

    other = tmp_path / "runs" / "copy"
    other.mkdir()
    (other / "results.jsonl").write_text((out / "results.jsonl").read_text())
    chart = tmp_path / "chart.png"
    code, out_text, _ = run_cli(capsys, "compare", str(out), str(other), "--out", str(chart))
    assert code == 0 and "| | tiny | copy |" in out_text
    assert chart.read_bytes().startswith(b"\x89PNG")


def test_report_of_a_missing_run_says_what_is_expected(capsys, tmp_path: Path) -> None:
    code, _, err = run_cli(capsys, "report", str(tmp_path / "nothing"))
    assert code == 2 and "expected a run folder with results.jsonl" in err


class _FakeOpenAI(BaseHTTPRequestHandler):
    """A minimal OpenAI-compatible server: /models, and a weather call for every request."""

    def log_message(self, *args: Any) -> None:  # keep test output clean
        pass

    def _send(self, payload: dict[str, Any]) -> None:
        body = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self._send({"object": "list", "data": [{"id": "fake", "object": "model"}]})

    def do_POST(self) -> None:
        request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        question = request["messages"][-1]["content"]
        city = question.rsplit(" ", 1)[-1]
        arguments = json.dumps({"city": city})
        function = {"name": "get_weather", "arguments": arguments}
        call = {"id": "call_1", "type": "function", "function": function}
        message = {"role": "assistant", "content": None, "tool_calls": [call]}
        self._send({
            "id": "x", "object": "chat.completion", "created": 0, "model": request["model"],
            "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls"}],
        })  # fmt: skip


def test_endpoint_run_with_workers(capsys, tmp_path: Path) -> None:
    pytest.importorskip("openai")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakeOpenAI)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        folder = write_bfcl_folder(tmp_path / "data")
        url = f"http://127.0.0.1:{server.server_address[1]}/v1"
        code, out_text, err = run_cli(
            capsys, "run", "--endpoint", url, "--model", "fake", "--workers", "2",
            "--categories", "simple_python", "multiple", "irrelevance",
            "--data-dir", str(folder), "--out", str(tmp_path / "remote"), "--no-progress",
        )  # fmt: skip
    finally:
        server.shutdown()
        server.server_close()
    assert code == 0, err
    rows = {r["id"]: r for r in map(json.loads, (tmp_path / "remote" / "results.jsonl").open())}
    assert rows["simple_python_1"]["valid"]  # "weather in Paris" -> get_weather(city="Paris")
    assert rows["multiple_0"]["valid"]
    assert rows["irrelevance_0"]["error_type"] == "called_when_should_not"
    assert "| multiple | 1 | 1 | 100.0% |" in out_text


def test_text_budget_needs_a_local_constrained_model(capsys, tmp_path: Path) -> None:
    out = str(tmp_path / "r")
    code, _, err = run_cli(
        capsys,
        "run",
        "--model",
        "m.gguf",
        "--no-constrained",
        "--text-max-tokens",
        "8",
        "--out",
        out,
    )
    assert code == 2 and "--text-max-tokens needs constrained decoding" in err
    code, _, err = run_cli(
        capsys, "run", "--model", "m.gguf", "--text-max-tokens", "0", "--out", out
    )
    assert code == 2 and "--text-max-tokens must be at least 1, got 0" in err
    code, _, err = run_cli(
        capsys, "run", "--endpoint", "http://127.0.0.1:9/v1", "--text-max-tokens", "8", "--out", out
    )
    assert code == 2 and "apply to a local --model" in err


def test_unknown_local_model_with_workers_is_reported_before_any_case(
    capsys, tmp_path: Path
) -> None:
    folder = write_bfcl_folder(tmp_path / "data")
    code, _, err = run_cli(
        capsys, "run", "--model", "no-such-model", "--workers", "2", "--categories",
        "simple_python", "--data-dir", str(folder), "--out", str(tmp_path / "r"), "--no-progress",
    )  # fmt: skip
    assert code == 2 and "'no-such-model'" in err, err
    assert not (tmp_path / "r" / "results.jsonl").exists()


@pytest.mark.model
def test_local_model_in_two_processes_answers_as_in_one(
    capsys, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setenv("FNCALL_THREADS", "1")  # the same arithmetic in every process
    argv = ["run", "--model", "smollm2-135m", "--categories", "simple_python", "irrelevance",
            "--limit", "3", "--seed", "0", "--constrained", "--text-max-tokens", "12",
            "--max-tokens", "96", "--no-progress"]  # fmt: skip
    outputs = []
    for workers, name in [("1", "one"), ("2", "two")]:
        code, _, err = run_cli(capsys, *argv, "--workers", workers, "--out", str(tmp_path / name))
        assert code == 0, err
        rows = map(json.loads, (tmp_path / name / "results.jsonl").open())
        outputs.append({r["id"]: (r["raw"], r["calls"], r["valid"]) for r in rows})
    assert len(outputs[0]) == 6 and outputs[1] == outputs[0]


def test_a_run_folder_records_when_the_judge_asks_its_question(capsys, tmp_path: Path, monkeypatch):
    """A folder run under one ``--judge-question`` is not resumed under another: each asks the
    question on different first turns, so mixing their rows would score no setting at all (they
    were recorded as the same threshold)."""
    folder = write_bfcl_folder(tmp_path / "data")
    cases = load_cases(["irrelevance"], data_dir=folder)
    monkeypatch.setattr(
        eval_cli, "_build_model", lambda args, key: ScriptedChat([oracle(cases)] * len(cases))
    )
    out = tmp_path / "run"
    argv = ["run", "--model", "qwen2.5-coder-1.5b", "--categories", "irrelevance",
            "--data-dir", str(folder), "--out", str(out), "--no-progress"]  # fmt: skip
    code, _, _ = run_cli(capsys, *argv, "--judge-question", "unnamed")
    assert code == 0
    recorded = json.loads((out / "meta.json").read_text())["judge"]
    assert recorded == "threshold -1.0, first-turn question unnamed"
    code, _, err = run_cli(capsys, *argv, "--judge-question", "unsure")
    assert code == 2 and "first-turn question unnamed' -> " in err
    assert "'threshold -1.0, first-turn question unsure'" in err
    code, _, err = run_cli(capsys, *argv, "--judge-question", "unsure", "--judge-sure", "0.8")
    assert code == 2 and "first-turn question unsure, sure 0.8'" in err
    # The model's own setting named records only the threshold, as before the question was.
    other = ["--out", str(tmp_path / "always")]
    assert run_cli(capsys, *argv, *other, "--judge-question", "always")[0] == 0
    assert json.loads((tmp_path / "always" / "meta.json").read_text())["judge"] == "threshold -1.0"
