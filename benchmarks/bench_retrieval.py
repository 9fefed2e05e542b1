"""Tool retrieval (``fncall.tools.retrieval``) on a pooled library of BFCL functions.

Two parts, one command:

1. **Recall@k.** Every function of BFCL's non-live categories (simple_python, multiple,
   parallel, parallel_multiple), identical docs merged, is one library (the *pool*); each case
   asks its question against the whole pool, and recall@k is the share of the functions its
   ground truth calls that are among the k tools retrieved (k = 1, 3, 5, 10), averaged over
   cases. Measured for each text representation of a tool (``name``, ``name_description``,
   ``full``) and for a keyword baseline (BM25 over the ``full`` text). The same is measured on
   the hand-written development suite (``benchmarks/devsuite``, pooled with its irrelevance
   functions and the training library's tools as distractors), which is where the
   representation and k were chosen; BFCL is the test set.
2. **End to end** (a sketch: ``--cases`` per category, seed 0, about ±10 points): the default
   model through the evaluation harness (``fncall.evaluate.runner.run_eval``, BFCL's AST
   checker) when it is offered (a) the k retrieved tools, (b) the case's own functions (the
   oracle: what BFCL offers, and what fits a prompt; the whole pool of ~1,500 schemas would not),
   (c) k tools drawn at random from the pool. Accuracy and seconds per case. Each condition's
   answers go to ``benchmarks/results/retrieval_runs/<condition>.jsonl``; running again resumes.

Writes benchmarks/results/retrieval.json and retrieval.png (recall@k curves). On a machine
shared with other work, set ``OMP_WAIT_POLICY=PASSIVE`` (llama.cpp's threads spinning at
barriers made a case take 150-200 s instead of 20-40 s here).
Run: OMP_WAIT_POLICY=PASSIVE nice .venv/bin/python benchmarks/bench_retrieval.py --cases 5
     [--k 5] [--skip-e2e | --skip-recall]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import random
import re
import statistics
import sys
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fncall.engine.prefix_store import turn_off_for_this_process
from fncall.evaluate.data import NON_LIVE, Case, load_category, sample_cases
from fncall.tools.importers import tool_from_bfcl
from fncall.tools.retrieval import (
    REPRESENTATIONS,
    RetrievingToolSet,
    retrieval_query,
    split_name,
    tool_text,
)
from fncall.types import Tool

HERE = Path(__file__).parent
RESULTS = HERE / "results" / "retrieval.json"
PLOT = HERE / "results" / "retrieval.png"
RUNS = HERE / "results" / "retrieval_runs"
DEVSUITE = HERE / "devsuite"
KS = (1, 3, 5, 10)
_SAFE = re.compile(r"[^A-Za-z0-9_-]")


@dataclasses.dataclass
class Pool:
    """A library pooled from many cases: unique docs, unique tool names, and per case the pool
    indices of its own functions and of the ones its ground truth calls."""

    tools: list[Tool]
    original: list[str]  # BFCL name of each pool tool
    own: dict[str, list[int]]  # case id -> its functions
    relevant: dict[str, list[int]]  # case id -> the functions its ground truth calls


def build_pool(cases: Sequence[Case], extra: Sequence[Mapping[str, Any] | Tool] = ()) -> Pool:
    index: dict[str, int] = {}
    tools: list[Tool] = []
    original: list[str] = []
    taken: set[str] = set()
    own: dict[str, list[int]] = {}
    relevant: dict[str, list[int]] = {}

    def add(doc: Mapping[str, Any] | Tool) -> int:
        if isinstance(doc, Tool):
            key = json.dumps(
                {"n": doc.name, "d": doc.description, "p": doc.parameters}, sort_keys=True
            )
        else:
            key = json.dumps(doc, sort_keys=True)
        if key in index:
            return index[key]
        tool = doc if isinstance(doc, Tool) else tool_from_bfcl(doc, where="pool")
        name = _SAFE.sub("_", tool.name) if not isinstance(doc, Tool) else tool.name
        base, suffix = name, 2
        while name in taken:
            name, suffix = f"{base}_{suffix}", suffix + 1
        taken.add(name)
        tools.append(Tool(name=name, description=tool.description, parameters=tool.parameters))
        original.append(doc.name if isinstance(doc, Tool) else str(doc["name"]))
        index[key] = len(tools) - 1
        return index[key]

    for case in cases:
        ids = [add(f) for f in case.functions]
        own[case.id] = ids
        wanted = set(case.expected_functions)
        relevant[case.id] = [
            i for i, f in zip(ids, case.functions, strict=True) if f["name"] in wanted
        ]
    for doc in extra:
        add(doc)
    return Pool(tools=tools, original=original, own=own, relevant=relevant)


# -- rankers -----------------------------------------------------------------------------------

_WORD = re.compile(r"[a-z0-9]+")
_STOP = frozenset(
    [
        "a",
        "an",
        "the",
        "of",
        "to",
        "in",
        "for",
        "on",
        "and",
        "or",
        "is",
        "are",
        "be",
        "by",
        "with",
        "from",
        "at",
        "as",
        "it",
        "this",
        "that",
        "what",
        "how",
        "i",
        "me",
        "my",
        "you",
        "your",
        "can",
        "please",
        "give",
        "find",
        "get",
    ]
)


def words(text: str) -> list[str]:
    return [w for w in _WORD.findall(split_name(text)) if w not in _STOP]


class BM25:
    """Okapi BM25 (k1 = 1.5, b = 0.75) over the ``full`` text of each tool: the keyword baseline."""

    def __init__(self, texts: Sequence[str]) -> None:
        self.docs = [Counter(words(t)) for t in texts]
        self.lengths = np.array([sum(d.values()) for d in self.docs], dtype=float)
        self.mean_length = float(self.lengths.mean()) or 1.0
        frequency: Counter[str] = Counter(w for d in self.docs for w in d)
        n = len(self.docs)
        self.idf = {w: math.log(1 + (n - f + 0.5) / (f + 0.5)) for w, f in frequency.items()}

    def scores(self, query: str) -> np.ndarray:
        out = np.zeros(len(self.docs))
        norm = 1.5 * (1 - 0.75 + 0.75 * self.lengths / self.mean_length)
        for word in set(words(query)):
            idf = self.idf.get(word)
            if idf is None:
                continue
            tf = np.array([d.get(word, 0) for d in self.docs], dtype=float)
            out += idf * tf * 2.5 / (tf + norm)
        return out


def ranked_by_embedding(pool: Pool, queries: Sequence[str], representation: str) -> np.ndarray:
    """Pool indices by similarity, best first, one row per query (the library's own vectors and
    cache; queries encoded in one batch, as ``RetrievingToolSet.rank`` would one by one)."""
    retriever = RetrievingToolSet(pool.tools, k=5, representation=representation)  # type: ignore[arg-type]
    matrix = retriever.tool_vectors(pool.tools)
    query_vectors = np.asarray(retriever.embedder.encode(list(queries)))
    return np.argsort(-(query_vectors @ matrix.T), axis=1, kind="stable")


def ranked_by_bm25(pool: Pool, queries: Sequence[str]) -> np.ndarray:
    bm25 = BM25([tool_text(t, "full") for t in pool.tools])
    return np.array([np.argsort(-bm25.scores(q), kind="stable") for q in queries])


def recall_table(
    pool: Pool, cases: Sequence[Case], ranking: np.ndarray, *, by_name: bool = False
) -> dict[str, Any]:
    """Recall@k per category and over all cases. ``by_name``: a retrieved tool counts when it
    has the BFCL name of a right one (BFCL holds many docs of one name, e.g. several
    ``calculate_area``s: a same-named variant often serves as well)."""
    per_category: dict[str, dict[int, list[float]]] = {}
    for case, order in zip(cases, ranking, strict=True):
        wanted: set[Any] = set(pool.relevant[case.id])
        if by_name:
            wanted = {pool.original[i] for i in wanted}
        if not wanted:
            continue
        for k in KS:
            top: set[Any] = set(order[:k].tolist())
            if by_name:
                top = {pool.original[i] for i in top}
            share = len(wanted & top) / len(wanted)
            per_category.setdefault(case.category, {}).setdefault(k, []).append(share)
    table: dict[str, Any] = {
        category: {str(k): round(100 * statistics.fmean(v), 1) for k, v in by_k.items()}
        for category, by_k in per_category.items()
    }
    table["all"] = {
        str(k): round(
            100 * statistics.fmean([s for by_k in per_category.values() for s in by_k[k]]), 1
        )
        for k in KS
    }
    return table


def fused(first: np.ndarray, second: np.ndarray, constant: int) -> np.ndarray:
    """Reciprocal rank fusion of two rankings (rows: queries; columns: pool indices by rank)."""
    score = np.zeros(first.shape, dtype=float)
    positions = np.arange(first.shape[1])
    for ranking in (first, second):
        rank = np.empty_like(ranking)
        np.put_along_axis(rank, ranking, positions[None, :].repeat(len(ranking), 0), axis=1)
        score += 1.0 / (constant + rank)
    return np.argsort(-score, axis=1, kind="stable")


def recall_all(pool: Pool, cases: Sequence[Case]) -> dict[str, Any]:
    queries = [retrieval_query(list(c.messages)) for c in cases]
    out: dict[str, Any] = {}
    rankings: dict[str, np.ndarray] = {}
    for representation in REPRESENTATIONS:
        started = time.perf_counter()
        ranking = rankings[representation] = ranked_by_embedding(pool, queries, representation)
        out[f"embedding:{representation}"] = recall_table(pool, cases, ranking)
        out[f"embedding:{representation}"]["by_name"] = recall_table(
            pool, cases, ranking, by_name=True
        )["all"]
        print(
            f"  embedding:{representation:<16} {out[f'embedding:{representation}']['all']}"
            f" by name {out[f'embedding:{representation}']['by_name']}"
            f"  ({time.perf_counter() - started:.1f} s)",
            flush=True,
        )
    keywords = ranked_by_bm25(pool, queries)
    out["bm25:full"] = recall_table(pool, cases, keywords)
    out["bm25:full"]["by_name"] = recall_table(pool, cases, keywords, by_name=True)["all"]
    print(
        f"  bm25:full                  {out['bm25:full']['all']}"
        f" by name {out['bm25:full']['by_name']}",
        flush=True,
    )
    for constant in (10, 60):  # 60: the usual constant; 10 weighs the top ranks more
        name = f"hybrid:rrf{constant}"
        ranking = fused(rankings["full"], keywords, constant)
        out[name] = recall_table(pool, cases, ranking)
        out[name]["by_name"] = recall_table(pool, cases, ranking, by_name=True)["all"]
        print(f"  {name:<26} {out[name]['all']} by name {out[name]['by_name']}", flush=True)
    return out


def selection_ms(pool: Pool, cases: Sequence[Case], count: int = 50) -> dict[str, float]:
    """Milliseconds of ``RetrievingToolSet.select`` per request (the query embedded, every tool
    hashed and ranked; tool vectors already cached), median and worst of ``count`` requests."""
    retriever = RetrievingToolSet(pool.tools, k=5)
    retriever.warm()
    times = []
    for case in cases[:: max(1, len(cases) // count)][:count]:
        started = time.perf_counter()
        retriever.select(list(case.messages))
        times.append(1000 * (time.perf_counter() - started))
    return {"p50": round(statistics.median(times), 1), "max": round(max(times), 1)}


# -- data ------------------------------------------------------------------------------------


def devsuite() -> tuple[list[Case], list[Mapping[str, Any] | Tool]]:
    from fncall.train.library import builtin_tools

    cases = [c for category in NON_LIVE for c in load_category(category, data_dir=DEVSUITE)]
    distractors: list[Mapping[str, Any] | Tool] = [
        f for c in load_category("irrelevance", data_dir=DEVSUITE) for f in c.functions
    ]
    distractors.extend(builtin_tools())
    return cases, distractors


def bfcl() -> list[Case]:
    return [c for category in NON_LIVE for c in load_category(category)]


# -- end to end ----------------------------------------------------------------------------


def with_tools(case: Case, pool: Pool, indices: Sequence[int], tools: Sequence[Tool]) -> Case:
    """``case`` offering ``tools`` (pool tools), their calls mapped back to BFCL names."""
    by_name = {pool.tools[i].name: pool.original[i] for i in indices}
    return dataclasses.replace(
        case,
        tools=tuple(tools),
        name_map={n: o for n, o in by_name.items() if n != o},
    )


def end_to_end(pool: Pool, cases: Sequence[Case], k: int, seed: int) -> dict[str, Any]:
    from fncall.engine import load_engine
    from fncall.evaluate.runner import run_eval
    from fncall.models import FAST_MODEL
    from fncall.pipeline import LocalChat

    retriever = RetrievingToolSet(pool.tools, k=k)
    position = {t.name: i for i, t in enumerate(pool.tools)}
    rng = random.Random(seed)
    conditions: dict[str, list[Case]] = {"retrieval": [], "oracle": [], "random": []}
    recalled: dict[str, bool] = {}
    for case in cases:
        chosen = retriever.select(list(case.messages)).tools
        picked = [position[t.name] for t in chosen]
        recalled[case.id] = set(pool.relevant[case.id]) <= set(picked)
        conditions["retrieval"].append(with_tools(case, pool, picked, chosen))
        own = pool.own[case.id]
        conditions["oracle"].append(with_tools(case, pool, own, [pool.tools[i] for i in own]))
        drawn = rng.sample(range(len(pool.tools)), k)
        conditions["random"].append(with_tools(case, pool, drawn, [pool.tools[i] for i in drawn]))
    model = LocalChat(load_engine(FAST_MODEL))
    RUNS.mkdir(parents=True, exist_ok=True)
    out: dict[str, Any] = {}
    for name, chosen_cases in conditions.items():
        started = time.perf_counter()
        run = run_eval(
            model, chosen_cases, out_path=RUNS / f"{name}_k{k}_seed{seed}.jsonl", progress=False
        )
        latencies = [r.latency_s for r in run.results]
        out[name] = {
            "accuracy": round(100 * run.accuracy, 1),
            "per_category": {c: round(100 * a, 1) for c, a in run.per_category.items()},
            "p50_s": round(statistics.median(latencies), 2),
            "mean_s": round(statistics.fmean(latencies), 2),
            "cases": len(run.results),
            "resumed": run.resumed,
            "tools_offered_mean": round(statistics.fmean(len(c.tools) for c in chosen_cases), 2),
        }
        print(f"  {name:<10} {out[name]} ({time.perf_counter() - started:.0f} s)", flush=True)
    out["retrieval"]["all_right_tools_retrieved"] = round(
        100 * statistics.fmean(recalled.values()), 1
    )
    return out


def plot(results: Mapping[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for ax, split in zip(axes, ("devsuite", "bfcl"), strict=True):
        data = results["recall"][split]
        for variant, table in data["variants"].items():
            style = "--" if variant.startswith("bm25") else "-"
            ax.plot(KS, [table["all"][str(k)] for k in KS], style, marker="o", label=variant)
        ax.set_title(f"{split}: {data['pool_size']} tools, {data['cases']} cases")
        ax.set_xlabel("k (tools retrieved)")
        ax.set_xticks(KS)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("recall@k of the ground truth's functions (%)")
    axes[1].legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(PLOT, dpi=110)


def main(argv: Sequence[str] | None = None) -> int:
    turn_off_for_this_process()  # timed from scratch: no states from earlier runs
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=10, help="end-to-end cases per category")
    parser.add_argument("--k", type=int, default=5, help="tools retrieved end to end (5)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-e2e", action="store_true", help="recall only (minutes less)")
    parser.add_argument(
        "--skip-recall", action="store_true", help="end to end only (keeps the saved recall)"
    )
    args = parser.parse_args(argv)
    results: dict[str, Any] = {"recall": {}, "ks": list(KS)}
    if RESULTS.exists():  # a part this run skips keeps its saved figures
        previous = json.loads(RESULTS.read_text())
        results.update({k: v for k, v in previous.items() if k in ("recall", "end_to_end")})
    for split in () if args.skip_recall else ("devsuite", "bfcl"):
        if split == "devsuite":
            cases, extra = devsuite()
        else:
            cases, extra = bfcl(), []
        pool = build_pool(cases, extra)
        print(f"{split}: pool of {len(pool.tools)} tools, {len(cases)} cases", flush=True)
        results["recall"][split] = {
            "pool_size": len(pool.tools),
            "cases": len(cases),
            "variants": recall_all(pool, cases),
            "select_ms": selection_ms(pool, cases),
        }
        print(f"  select: {results['recall'][split]['select_ms']} ms per request", flush=True)
    if not args.skip_e2e:
        cases = bfcl()
        pool = build_pool(cases)
        sample = [
            c
            for category in NON_LIVE
            for c in sample_cases([c for c in cases if c.category == category], args.cases, 0)
        ]
        print(f"end to end: {len(sample)} cases, k={args.k}", flush=True)
        results["end_to_end"] = {
            "k": args.k,
            "cases_per_category": args.cases,
            "seed": args.seed,
            "model": "qwen2.5-coder-0.5b",
            **end_to_end(pool, sample, args.k, args.seed),
        }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    if RESULTS.exists():  # another run may have saved the part this one skipped meanwhile
        saved = json.loads(RESULTS.read_text())
        if args.skip_recall and "recall" in saved:
            results["recall"] = saved["recall"]
        if args.skip_e2e and "end_to_end" in saved:
            results["end_to_end"] = saved["end_to_end"]
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    plot(results)
    print(f"wrote {RESULTS} and {PLOT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
