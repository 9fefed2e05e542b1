"""Would the embedding model help the call-or-abstain decision? A replay on recorded drafts.

Session 15 measured that the default model's own yes/no question (the judge's step 2) cannot
tell the devsuite's hard negatives from right drafts (AUC ~0.5), while the packaged MiniLM's
cosine between the request and the called function's description can (AUC 0.85 on the devsuite,
0.90 on generated seed 303). This replays the current default judge on the recorded drafts
(``bench_decision.py``'s rows: devsuite, pythonic, count auto; seed 303, pythonic) with one
more gate: a kept turn must have a called function whose description is at least ``sim`` close
to the request. Development data only; nothing here is the default yet.

    .venv/bin/python benchmarks/bench_similarity_gate.py   (writes results/similarity_gate.json)
"""

from __future__ import annotations

import collections
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
import bench_decision as bd

from fncall.embed import default_embedder
from fncall.judge import Judge, distinct_calls, grounding

RESULTS = Path(__file__).parent / "results" / "similarity_gate.json"
DEVSUITE = "benchmarks/devsuite"
SETS = [
    ("devsuite", "decision_rows_devsuite_240_pythonic_countauto.jsonl", 0, 0, DEVSUITE),
    ("seed303", "decision_rows_seed303_160_pythonic.jsonl", 160, 303, None),
]
GATES = (None, 0.2, 0.25, 0.3, 0.35, 0.4)


def similarities(rows: list[dict[str, Any]], requests: list[Any]) -> list[dict[str, float]]:
    """Per row: the cosine between the request and each called function's description."""
    embedder = default_embedder()
    out: list[dict[str, float]] = []
    for row in rows:
        _, messages, tools = requests[row["i"]]
        offered = {tool.name: tool for tool in tools}
        texts = {
            name: offered[name].description or name for name, _ in row["calls"] if name in offered
        }
        if not texts:
            out.append({})
            continue
        vectors = embedder.encode([messages[-1].content, *texts.values()])
        out.append(dict(zip(texts, (vectors[1:] @ vectors[0]).tolist(), strict=True)))
    return out


def replay(label: str, name: str, cases: int, seed: int, data_dir: str | None) -> dict[str, Any]:
    rows = bd._rows(RESULTS.parent / name)
    bd._mark_right(rows, cases, seed, data_dir)
    requests = bd._requests(cases, seed, data_dir)
    sims = similarities(rows, requests)
    judge = Judge()
    table: dict[str, Any] = {}
    for gate in GATES:
        hits: dict[str, list[bool]] = collections.defaultdict(list)
        for row, sim in zip(rows, sims, strict=True):
            _, messages, tools = requests[row["i"]]
            request = messages[-1].content
            final = draft = list(distinct_calls(bd._calls(row["calls"])))
            if draft:
                kept = judge.grounded_functions(draft, request)
                names = {call.name for call in kept}
                measured = judge.given_options(draft, tools, request, defaults=False)
                passes = grounding(measured, request) >= 0.6 and any(
                    score >= 0.4 for n, score in row["scores"]["part"].items() if n in names
                )
                if gate is not None and passes:
                    passes = max((sim.get(n, 1.0) for n in names), default=1.0) >= gate
                final = list(judge.given_options(kept, tools, request)) if passes else []
            kind = row["kind"].removeprefix("generated:")
            needs_call = bool(bd._expected(row["i"], cases, seed, data_dir))
            good = bd._right(row, final, cases, seed, data_dir) if needs_call else not final
            hits[kind].append(good)
        scores = {kind: round(100 * sum(v) / len(v), 1) for kind, v in sorted(hits.items())}
        calls = [v for kind, v in scores.items() if kind != "irrelevance"]
        scores["call_mean"] = round(sum(calls) / len(calls), 1)
        table[f"sim >= {gate}" if gate is not None else "default judge"] = scores
        print(label, gate, scores, flush=True)
    return table


def main() -> None:
    RESULTS.write_text(json.dumps({s[0]: replay(*s) for s in SETS}, indent=1) + "\n")
    print(f"written: {RESULTS}")


if __name__ == "__main__":
    main()
