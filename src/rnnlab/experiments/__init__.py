"""The seed notes' claims as runnable experiments: gradient products, long-range tasks, a leak."""

from types import ModuleType

from rnnlab.experiments import adding, bidirectional_leak, copy, products
from rnnlab.experiments.common import ExperimentResult

# name -> module with NAME, DESCRIPTION and run(quick, seed, out, ...) -> ExperimentResult
EXPERIMENTS: dict[str, ModuleType] = {m.NAME: m for m in (products, adding, copy, bidirectional_leak)}

__all__ = ["EXPERIMENTS", "ExperimentResult"]
