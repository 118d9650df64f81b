"""The built-in default corpus: documentation text that ships inside every CPython install."""

from __future__ import annotations

from rnnlab.errors import RnnlabError

BUILTIN_CORPORA = ("python-docs",)


def builtin_corpus(name: str = "python-docs") -> str:
    """Return the text of a built-in corpus, read from the running interpreter (nothing is downloaded).

    ``"python-docs"`` is CPython's ``pydoc_data.topics``: the language reference topics that ``help()``
    shows, about 465k characters of English prose and code. Topics are joined in sorted key order so
    the text is the same on every run of the same interpreter.

    Raises:
        RnnlabError: unknown name, or an interpreter whose distribution stripped ``pydoc_data``.
    """
    if name not in BUILTIN_CORPORA:
        raise RnnlabError(f"unknown built-in corpus {name!r}; available: {', '.join(BUILTIN_CORPORA)}")
    try:
        from pydoc_data.topics import topics
    except ImportError as e:
        raise RnnlabError(
            "this Python lacks pydoc_data.topics (some distributions strip it), so there is no built-in "
            "corpus; give a text file: rnnlab train FILE.txt"
        ) from e
    text = "\n\n".join(topics[key].strip("\n") for key in sorted(topics)) + "\n"
    return text.replace("\r\n", "\n")
