"""Run a ``ChatModel`` over BFCL cases, checking each answer and appending it to a JSON Lines file.

Each finished case is written (and flushed) at once, so an interrupted run loses at most the
cases in flight: running again with the same ``out_path`` skips the ids already in the file (a
truncated last line is dropped and that case redone).

A ``ModelOutputError`` (output that could not be decoded) is scored "unparseable". Other
exceptions stop the run when they come several in a row (a lost server must not be scored as
the model's failures); a case that fails alone is scored ``model_error`` (written when the next
success shows it came alone).

Cases run one at a time, on threads (``workers``: for an HTTP endpoint) or in processes that
each load their own copy of a local model (``processes`` with a ``LocalModelSpec``: a llama.cpp
or torch model cannot be shared, and several one- or two-thread copies use a many-core CPU
better than one). Only this process writes the results file, so resuming works the same way.
"""

from __future__ import annotations

import copy
import json
import multiprocessing
import os
import pickle
import signal
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import (
    Executor,
    Future,
    ProcessPoolExecutor,
    ThreadPoolExecutor,
    as_completed,
)
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fncall.engine.base import ChatModel, require_chat_model
from fncall.engine.threads import default_threads
from fncall.errors import ModelOutputError, RunStopped, UserError, describe_exception
from fncall.evaluate.checker import Verdict, check_case
from fncall.evaluate.data import Case
from fncall.types import AssistantTurn, Decision, ToolCall, ToolChoice


@dataclass(frozen=True, kw_only=True)
class CaseResult:
    """One evaluated case: the calls (original names; ``None`` = unparseable) and the verdict."""

    id: str
    category: str
    calls: tuple[ToolCall, ...] | None
    verdict: Verdict
    latency_s: float = 0.0
    raw: str = ""
    expected: tuple[str, ...] = ()  # the function names the ground truth calls
    # How the judge decided the draft (``fncall.types.Decision``, with ``draft_valid``: whether
    # the drafted calls were right), when it did: ``fncall eval report``'s decision curve.
    decision: Mapping[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        extra = {} if self.decision is None else {"decision": dict(self.decision)}
        return {
            "id": self.id,
            "category": self.category,
            "calls": None
            if self.calls is None
            else [{"name": c.name, "arguments": dict(c.arguments)} for c in self.calls],
            "valid": self.verdict.valid,
            "error_type": self.verdict.error_type,
            "detail": self.verdict.detail,
            "message": self.verdict.message,
            "latency_s": round(self.latency_s, 4),
            "raw": self.raw,
            "expected": list(self.expected),
            **extra,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CaseResult:
        calls = data.get("calls")
        return cls(
            id=str(data["id"]),
            category=str(data["category"]),
            calls=None
            if calls is None
            else tuple(ToolCall(name=c["name"], arguments=c.get("arguments") or {}) for c in calls),
            verdict=Verdict(
                valid=bool(data["valid"]),
                error_type=data.get("error_type"),
                detail=data.get("detail", ""),
                message=data.get("message", ""),
            ),
            latency_s=float(data.get("latency_s", 0.0)),
            raw=data.get("raw", ""),
            expected=tuple(data.get("expected") or ()),
            decision=data.get("decision") if isinstance(data.get("decision"), Mapping) else None,
        )


@dataclass(frozen=True, kw_only=True)
class RunResult:
    """The results of the requested cases (resumed ones included), in case order."""

    path: Path
    results: tuple[CaseResult, ...]
    resumed: int = 0  # cases found already done in the file
    per_category: dict[str, float] = field(default_factory=dict)

    @property
    def accuracy(self) -> float:
        if not self.results:
            return 0.0
        return sum(r.verdict.valid for r in self.results) / len(self.results)


@dataclass(frozen=True)
class LocalModelSpec:
    """How to load a local model, for ``run_eval(..., processes=N)``: each process builds its
    own ``LocalChat(load_engine(model), **options)`` from this recipe."""

    model: str  # a catalogue name, a .gguf file, a Hugging Face or adapter folder
    options: Mapping[str, Any] = field(default_factory=dict)  # LocalChat's: format, max_tokens...

    def install(self) -> None:
        """Assemble a catalogue model once, before the processes that load it start."""
        from fncall.models import ModelSpec, install_model, resolve_model

        resolved = resolve_model(self.model)
        if isinstance(resolved, ModelSpec):
            install_model(resolved)

    def __call__(self) -> ChatModel:
        from fncall.engine import load_engine
        from fncall.pipeline import LocalChat

        return LocalChat(load_engine(self.model), **dict(self.options))


def read_results(path: str | Path, *, repair: bool = False) -> list[CaseResult]:
    """The results in a run file. A truncated last line (an interrupted write) is ignored, and
    with ``repair=True`` cut off the file; a bad line elsewhere is a ``UserError``."""
    path = Path(path)
    if not path.exists():
        return []
    data = path.read_bytes()
    lines = data.split(b"\n")
    tail = lines.pop()  # b"" when the file ends with a newline, else a write that was cut short
    good_end = len(data) - len(tail)
    results: list[CaseResult] = []
    offset = 0
    for number, line in enumerate(lines, start=1):
        if line.strip():
            try:
                results.append(CaseResult.from_json(json.loads(line)))
            except (ValueError, KeyError, TypeError) as exc:
                if number < len(lines):
                    raise UserError(f"{path}:{number}: not a result line ({exc})") from None
                good_end = offset  # a garbled last line: redo that case too
                break
        offset += len(line) + 1
    if repair and good_end < len(data):
        with path.open("r+b") as handle:
            handle.truncate(good_end)
    return results


def probe_endpoint(base_url: str, *, api_key: str | None = None, timeout: float = 5.0) -> None:
    """Raise a ``UserError`` now if an OpenAI-compatible endpoint cannot be reached."""
    url = base_url.rstrip("/") + "/models"
    request = urllib.request.Request(url)
    if api_key:
        request.add_header("Authorization", f"Bearer {api_key}")
    try:
        with urllib.request.urlopen(request, timeout=timeout):
            return
    except urllib.error.HTTPError as exc:
        if exc.code in (401, 403) and api_key:
            raise UserError(
                f"endpoint {base_url} refused the request (HTTP {exc.code}): check --api-key"
            ) from None
        return  # it answered: reachable (a model may hold its key where we cannot see it)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise UserError(
            f"cannot reach endpoint {base_url} ({reason}); is the server running and the URL "
            "right (e.g. http://127.0.0.1:8000/v1)?"
        ) from None


def _with_constrained(model: ChatModel, constrained: bool) -> ChatModel:
    """``model`` with constrained decoding switched on or off: a setting of ``LocalChat``."""
    from fncall.pipeline import LocalChat

    if not isinstance(model, LocalChat):
        raise UserError(
            f"constrained={constrained} needs a local model with a constrained-decoding switch "
            f"(LocalChat); {type(model).__name__} has none"
        )
    if model.constrained == constrained:
        return model
    switched = copy.copy(model)
    switched.constrained = constrained
    return switched


def ask_case(
    model: ChatModel, case: Case, *, options: Mapping[str, Any] | None = None
) -> AssistantTurn:
    """The model's turn for one case, asked as BFCL asks it (``tool_choice="auto"``, parallel
    calls allowed)."""
    return model.complete(
        list(case.messages),
        list(case.tools),
        tool_choice=ToolChoice(mode="auto"),
        parallel_tool_calls=True,
        **dict(options or {}),
    )


def evaluate_case(
    model: ChatModel, case: Case, *, options: Mapping[str, Any] | None = None
) -> CaseResult:
    """Ask the model one case and check its answer."""
    started = time.perf_counter()
    try:
        turn = ask_case(model, case, options=options)
        calls: tuple[ToolCall, ...] | None = tuple(case.restore_names(turn.tool_calls))
        raw = turn.raw or turn.content or ""
        decision = _decision(case, turn.decision)
    except ModelOutputError as exc:
        calls, raw, decision = None, exc.raw, None
    latency = time.perf_counter() - started
    return CaseResult(
        id=case.id,
        category=case.category,
        calls=calls,
        verdict=check_case(case, calls),
        latency_s=latency,
        raw=raw,
        expected=tuple(case.expected_functions),
        decision=decision,
    )


def _decision(case: Case, decision: Decision | None) -> dict[str, Any] | None:
    """The judge's decision as a results file keeps it, with the draft checked too."""
    if decision is None:
        return None
    # What the turn returns when the judge keeps it: the draft less any ungrounded functions.
    draft = tuple(case.restore_names(decision.calls or decision.draft))
    return {
        "grounding": round(decision.grounding, 4),
        "scores": {name: round(score, 4) for name, score in decision.scores.items()},
        "kept": decision.kept,
        "threshold": decision.threshold,
        "min_grounding": decision.min_grounding,
        "repeated": decision.repeated,
        **({} if decision.similarity is None else {"similarity": round(decision.similarity, 4)}),
        **({} if decision.question else {"question": False}),
        **({} if decision.named is None else {"named": decision.named}),
        **({} if decision.confidence is None else {"confidence": round(decision.confidence, 4)}),
        "draft_valid": check_case(case, draft).valid,
    }


def run_eval(
    model: ChatModel | LocalModelSpec,
    cases: Iterable[Case],
    *,
    out_path: str | Path,
    workers: int = 1,
    processes: int = 1,
    constrained: bool | None = None,
    progress: bool = True,
    options: Mapping[str, Any] | None = None,
    max_consecutive_errors: int = 3,
) -> RunResult:
    """Evaluate ``model`` on ``cases``, appending one JSON line per case to ``out_path``.

    ``workers`` > 1 asks several cases at once: worth it for a remote endpoint; a local engine
    that is not thread-safe is serialised behind a lock (so it gains nothing). ``processes`` > 1
    asks several cases at once in that many processes, each loading its own copy of ``model``,
    which must then be a ``LocalModelSpec``; each copy gets ``$FNCALL_THREADS`` threads if set,
    else an equal share of this process's cores. ``constrained``
    (when given) switches constrained decoding on or off for a model that has the switch
    (``LocalChat``), on a copy of it; ``options`` go to every ``model.complete`` call.

    A case whose request raises (other than ``ModelOutputError``) is set aside and the run goes
    on; ``max_consecutive_errors`` such failures in a row stop the run (a dead server, a bug)
    with ``RunStopped``, writing none of them. Cases that failed alone (a prompt too long for the
    context, say) are written as ``model_error`` failures, as BFCL counts them, once the next
    success shows they came alone (or at the end), so a resume never asks them again.
    """
    if not isinstance(workers, int) or workers < 1:
        raise UserError(f"workers must be a positive integer, got {workers!r}")
    if not isinstance(processes, int) or processes < 1:
        raise UserError(f"processes must be a positive integer, got {processes!r}")
    if processes > 1 and workers > 1:
        raise UserError("give workers (threads) or processes, not both")
    if processes > 1 and not isinstance(model, LocalModelSpec):
        raise UserError(
            f"processes={processes} needs a LocalModelSpec (each process loads its own copy of the "
            f"model), got {type(model).__name__}; use workers for an endpoint"
        )
    if not isinstance(max_consecutive_errors, int) or max_consecutive_errors < 1:
        raise UserError(f"max_consecutive_errors must be >= 1, got {max_consecutive_errors!r}")
    cases = list(cases)
    ids = [c.id for c in cases]
    if len(set(ids)) != len(ids):
        raise UserError("cases contain duplicate ids; each id is written once per run file")
    from fncall.engine.remote import RemoteChat

    if isinstance(model, RemoteChat):
        probe_endpoint(model.base_url)  # a dead endpoint fails here, not once per case
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    wanted = set(ids)
    done = {r.id: r for r in read_results(out_path, repair=True) if r.id in wanted}
    todo = [c for c in cases if c.id not in done]
    request_options = dict(options or {})
    spec = model if isinstance(model, LocalModelSpec) else None
    processes = max(1, min(processes, len(todo)))
    if spec is not None and processes > 1:
        spec.install()
        pool: Executor | None = _process_pool(spec, processes, constrained, request_options)
        ask: Callable[[Case], CaseResult | Exception] = _ask_in_worker
    else:  # here, one case at a time or on threads
        chat = spec() if spec is not None else model
        assert not isinstance(chat, LocalModelSpec)
        if constrained is not None:
            chat = _with_constrained(chat, constrained)
        lock = None if require_chat_model(chat).capabilities.thread_safe else threading.Lock()
        pool = None
        if workers > 1:
            pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fncall-eval")

        def ask_here(case: Case) -> CaseResult | Exception:
            try:
                if lock is None:
                    return evaluate_case(chat, case, options=request_options)
                with lock:
                    return evaluate_case(chat, case, options=request_options)
            except Exception as exc:  # judged by the caller: a failing case or a failing run
                return exc

        ask = ask_here

    from tqdm import tqdm

    correct = sum(r.verdict.valid for r in done.values())
    set_aside: list[tuple[Case, Exception]] = []
    streak = 0
    with (
        out_path.open("a", encoding="utf-8") as handle,
        tqdm(
            total=len(cases), initial=len(done), disable=not progress, desc="eval", unit="case"
        ) as bar,
    ):

        def record(result: CaseResult) -> None:
            nonlocal correct
            handle.write(json.dumps(result.to_json(), ensure_ascii=False) + "\n")
            handle.flush()
            done[result.id] = result
            correct += result.verdict.valid
            bar.update(1)
            bar.set_postfix(acc=f"{correct / len(done):.1%}")

        def settle(case: Case, outcome: CaseResult | Exception) -> None:
            nonlocal streak
            if isinstance(outcome, CaseResult):
                # The failures before this success came alone: written now, not at the end, or a
                # stopped or killed run would lose them and its resume would ask them first, in a
                # row, and stop again (issue 20, item 11).
                for failed, error in set_aside:
                    record(_error_result(failed, error))
                set_aside.clear()
                streak = 0
                record(outcome)
                return
            streak += 1
            set_aside.append((case, outcome))
            if streak >= max_consecutive_errors:
                raise RunStopped(
                    f"{streak} cases in a row failed, the last with {describe_exception(outcome)}; "
                    f"the {len(done)} finished case(s) are saved in {out_path}: run the same "
                    "command again to resume"
                ) from outcome

        if pool is None:
            for case in todo:
                settle(case, ask(case))
        else:
            _run_pool(pool, ask, todo, settle)
        for case, error in set_aside:
            record(_error_result(case, error))
    results = tuple(done[i] for i in ids)
    return RunResult(
        path=out_path,
        results=results,
        resumed=len(cases) - len(todo),
        per_category=_per_category(results),
    )


def _error_result(case: Case, error: Exception) -> CaseResult:
    verdict = Verdict(
        valid=False,
        error_type="model_error",
        detail="inference_error",
        message=describe_exception(error),
    )
    return CaseResult(
        id=case.id,
        category=case.category,
        calls=None,
        verdict=verdict,
        raw="",
        expected=tuple(case.expected_functions),
    )


def _run_pool(
    pool: Executor,
    ask: Callable[[Case], CaseResult | Exception],
    todo: Sequence[Case],
    settle: Callable[[Case, CaseResult | Exception], None],
) -> None:
    with pool:
        futures: dict[Future[CaseResult | Exception], Case] = {
            pool.submit(ask, case): case for case in todo
        }
        try:
            for future in as_completed(futures):
                if future.cancelled():
                    continue
                try:
                    outcome = future.result()
                except BrokenProcessPool:  # a process died (out of memory, killed)
                    outcome = RuntimeError("an evaluation process died (out of memory? killed?)")
                settle(futures[future], outcome)
        except BaseException:  # too many errors, or Ctrl-C: stop asking, keep what is written
            for pending in futures:
                pending.cancel()
            _stop_processes(pool)
            raise


def _process_pool(
    spec: LocalModelSpec,
    processes: int,
    constrained: bool | None,
    options: Mapping[str, Any],
) -> ProcessPoolExecutor:
    if os.environ.get("FNCALL_THREADS", "").strip():
        threads = default_threads()  # the user's figure, for each process
    else:
        threads = max(1, default_threads() // processes)
    return ProcessPoolExecutor(
        max_workers=processes,
        mp_context=multiprocessing.get_context("spawn"),  # no forked copy of threads or locks
        initializer=_start_worker,
        initargs=(spec, constrained, dict(options), threads),
    )


def _stop_processes(pool: Executor) -> None:
    """End the cases in flight at once instead of waiting for them (they are not written)."""
    if not isinstance(pool, ProcessPoolExecutor):
        return
    workers = getattr(pool, "_processes", None) or {}  # public only from Python 3.14 on
    for process in list(workers.values()):
        process.terminate()


_WORKER: dict[str, Any] = {}  # the model (or why it failed to load) of an evaluation process


def _start_worker(
    spec: LocalModelSpec, constrained: bool | None, options: dict[str, Any], threads: int
) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    threading.Thread(target=_exit_with, args=(os.getppid(),), daemon=True).start()
    os.environ["FNCALL_THREADS"] = str(threads)
    try:
        chat = spec()
        if constrained is not None:
            chat = _with_constrained(chat, constrained)
        if "torch" in sys.modules:
            sys.modules["torch"].set_num_threads(threads)
        _WORKER.update(chat=chat, options=options)
    except Exception as exc:  # reported by every case, so the run stops with this error
        _WORKER["error"] = _portable(exc)


def _exit_with(parent: int) -> None:
    """End this process once its parent is gone (killed, say), rather than wait for work forever
    with a model in memory."""
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(1)


def _ask_in_worker(case: Case) -> CaseResult | Exception:
    if "error" in _WORKER:
        return _WORKER["error"]  # type: ignore[no-any-return]
    try:
        return evaluate_case(_WORKER["chat"], case, options=_WORKER["options"])
    except Exception as exc:
        return _portable(exc)


def _portable(exc: Exception) -> Exception:
    """The exception itself if it survives the trip to the parent process, else its text."""
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:
        return RuntimeError(describe_exception(exc))
    return exc


def _per_category(results: Sequence[CaseResult]) -> dict[str, float]:
    totals: dict[str, list[int]] = {}
    for result in results:
        counts = totals.setdefault(result.category, [0, 0])
        counts[0] += result.verdict.valid
        counts[1] += 1
    return {category: ok / n for category, (ok, n) in totals.items()}
