"""`rnnlab baseline` as a library call: the Kneser-Ney n-gram on the split and vocabulary a run would use."""

from __future__ import annotations

from rnnlab.config import NGRAM_TOKENS, DataConfig, RunConfig
from rnnlab.data import Corpus
from rnnlab.nn import OrderSelection, fit_ngram
from rnnlab.train.evaluate import held_out


def baseline(
    data: DataConfig,
    max_order: int = 7,
    max_tokens: int | None = NGRAM_TOKENS,
    eval_tokens: int = RunConfig().eval_tokens,
) -> tuple[dict, OrderSelection, Corpus]:
    """Fit modified Kneser-Ney models of orders 1..``max_order`` on the train split, choose the order on
    validation, and score val and test (the test score never influences the choice), as a run does:
    counting at most ``max_tokens`` training tokens, scoring at most ``eval_tokens`` of val and test.

    Returns:
        ``(result, selection, corpus)``: the JSON-able result (``order``, ``val_loss``, ``val_ppl``,
        ``test_loss``, ``test_ppl``, ``oov_rate``, ``seconds``, every order's ``orders``), the
        :class:`rnnlab.nn.OrderSelection` (``render_text()`` prints its table), and the corpus.
    """
    corpus = Corpus.from_config(data)
    val, test = (held_out(ids, eval_tokens, len(corpus.vocab)) for ids in (corpus.val, corpus.test))
    fit = fit_ngram(
        corpus.train, val, len(corpus.vocab), test=test if len(test) else None,
        max_order=max(1, max_order), max_tokens=max_tokens,
    )  # fmt: skip
    sel, best = fit.selection, fit.selection.best
    result = {
        "source": corpus.source,
        "order": sel.order,
        "vocab_size": len(corpus.vocab),
        "val_loss": best.val_loss,
        "val_ppl": best.val_ppl,
        "test_loss": best.test_loss,
        "test_ppl": best.test_ppl,
        "oov_rate": corpus.oov_rate,
        "counted_tokens": fit.counts.num_counted,
        "seconds": round(fit.seconds, 3),
        "orders": [{"order": s.order, "val_ppl": s.val_ppl, "test_ppl": s.test_ppl} for s in sel.scores],
    }
    return result, sel, corpus
