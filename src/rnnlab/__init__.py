"""rnnlab: train, diagnose and sample recurrent language models on any UTF-8 text."""

from rnnlab.errors import RnnlabError

__version__ = "0.1.0"

__all__ = ["RnnlabError", "__version__"]
