"""`rnnlab baseline` as a library call: the Kneser-Ney n-gram on the split and vocabulary a run would use."""

from __future__ import annotations

import time

from rnnlab.config import DataConfig
from rnnlab.data import Corpus
from rnnlab.nn import OrderSelection, select_order


def baseline(data: DataConfig, max_order: int = 7) -> tuple[dict, OrderSelection, Corpus]:
    """Fit modified Kneser-Ney models of orders 1..``max_order`` on the train split, choose the order on
    validation, and score val and test (the test score never influences the choice).

    Returns:
        ``(result, selection, corpus)``: the JSON-able result (``order``, ``val_loss``, ``val_ppl``,
        ``test_loss``, ``test_ppl``, ``oov_rate``, ``seconds``, every order's ``orders``), the
        :class:`rnnlab.nn.OrderSelection` (``render_text()`` prints its table), and the corpus.
    """
    corpus = Corpus.from_config(data)
    start = time.perf_counter()
    orders = range(1, max(1, max_order) + 1)
    sel = select_order(corpus.train, corpus.val, len(corpus.vocab), orders, test=corpus.test)
    best = sel.best
    result = {
        "source": corpus.source,
        "order": sel.order,
        "vocab_size": len(corpus.vocab),
        "val_loss": best.val_loss,
        "val_ppl": best.val_ppl,
        "test_loss": best.test_loss,
        "test_ppl": best.test_ppl,
        "oov_rate": corpus.oov_rate,
        "seconds": round(time.perf_counter() - start, 3),
        "orders": [{"order": s.order, "val_ppl": s.val_ppl, "test_ppl": s.test_ppl} for s in sel.scores],
    }
    return result, sel, corpus
