"""An evaluation adds a sub-portfolio's parts in an order fixed by the symphony alone,
so every run computes the same bits (Python randomises string hashing per process)."""

from __future__ import annotations

import os
import subprocess
import sys

RUN = """
import hashlib
from datetime import date

import numpy as np

from alchemiser.adapters.files.prices import FilePriceStore
from alchemiser.strategy.base import ALL_HISTORY
from alchemiser.strategy.symphony.evaluator import evaluate
from alchemiser.strategy.symphony.parser import parse_symphony, symbols

TEXT = '''
(defsymphony "order" {:rebalance-frequency :daily}
  (filter (stdev-return {:window 10}) (select-top 1)
    [(if (> (relative-strength-index "SPY" {:window 10}) 50)
       [(weight-equal [(asset "QQQ") (asset "TLT") (asset "GLD") (asset "SOXL") (asset "IEF")])]
       [(weight-equal [(asset "BND") (asset "AGG") (asset "BSV") (asset "UPRO") (asset "TECL")])])
     (if (> (cumulative-return "QQQ" {:window 5}) 0)
       [(weight-equal [(asset "SPXL") (asset "FAS") (asset "EXC") (asset "IOO") (asset "BIL")])]
       [(weight-equal [(asset "QQQE") (asset "TQQQ") (asset "SPY") (asset "PSQ")
                       (asset "NLR")])])]))
'''
symphony = parse_symphony(TEXT, "order.clj")
history = FilePriceStore.bundled().history(
    sorted(symbols(symphony)), date(2026, 7, 31), ALL_HISTORY
)
context = evaluate(symphony, history, trace=True).evaluated
digest = hashlib.sha256()
for _, scores, _ in context.rankings.values():
    digest.update(np.ascontiguousarray(scores).tobytes())
print(digest.hexdigest())
"""


def _scores_digest(seed: str) -> str:
    environment = dict(os.environ, PYTHONHASHSEED=seed)
    done = subprocess.run(
        [sys.executable, "-c", RUN],
        env=environment,
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    return done.stdout.strip()


def test_sub_portfolio_scores_are_the_same_bits_in_every_process() -> None:
    digests = {_scores_digest(seed) for seed in ("1", "2", "3", "4", "5", "6")}
    assert len(digests) == 1
