"""What a run's units track: every unit's state over a text, ranked against text features, on a page."""

from rnnlab.inspect.activations import Recording, record
from rnnlab.inspect.correlate import FeatureScores, UnitScore, pearson, rank_units
from rnnlab.inspect.features import FEATURES, parse_features
from rnnlab.inspect.page import render_page, write_inspection
from rnnlab.inspect.run import Inspection, inspect_run, inspection_json

__all__ = [
    "FEATURES",
    "FeatureScores",
    "Inspection",
    "Recording",
    "UnitScore",
    "inspect_run",
    "inspection_json",
    "parse_features",
    "pearson",
    "rank_units",
    "record",
    "render_page",
    "write_inspection",
]
