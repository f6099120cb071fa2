"""Tagging on a Dask cluster: a bag of texts, or a dataframe column, in; their results out.

Each result is a dict as `nerlstm tag -f jsonl` writes it (:meth:`TaggedText.to_dict`,
scores rounded to four places), each text read as one document, as :func:`nerlstm.load`'s
tagger reads it. Only the model's path travels with the tasks: each worker process loads the
model once, on its first partition, and keeps it for the next ones, so the path must name the
same file on every worker (a shared or copied file). A worker tags on one torch thread: run a
worker process per core (``dask worker --nworkers N --nthreads 1``).

Example::

    import dask.bag as db
    from nerlstm.dask import tag_bag

    texts = db.read_text("news/*.txt", linedelimiter="\\n\\n")  # paragraphs
    tag_bag(texts, "model.pt").map(json.dumps).to_textfiles("tagged/*.jsonl")

Needs the ``dask`` extra: ``pip install 'nerlstm[dask]'``.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING

try:
    import dask.bag  # noqa: F401
except ImportError:
    raise ImportError("nerlstm.dask needs dask: pip install 'nerlstm[dask]'") from None

if TYPE_CHECKING:
    from nerlstm.api import TextTagger

# In each worker process: the taggers loaded, by the model file's absolute path.
_taggers: dict[str, TextTagger] = {}
_lock = threading.Lock()


def cached_tagger(model: str | os.PathLike) -> TextTagger:
    """The tagger of ``model``, loaded on first use in this process (on one torch thread)
    and kept."""
    key = os.path.abspath(model)
    with _lock:
        if key not in _taggers:
            from nerlstm.api import load

            _taggers[key] = load(key, threads=1)
        return _taggers[key]


def tag_texts(texts: Iterable[str], model: str | os.PathLike, *,
              batch_size: int = 256) -> list[dict]:
    """Each text's result as `tag -f jsonl` writes it, tagged by the process's cached
    ``model`` (what each partition of :func:`tag_bag` runs)."""
    tagger = cached_tagger(model)
    results = []
    with _lock:  # one partition at a time per process: the tagger's caches are not shared
        for tagged in tagger.pipe(texts, batch_size):
            values = tagged.to_dict()
            for entity in values["entities"]:
                if entity["score"] is not None:
                    entity["score"] = round(entity["score"], 4)
            results.append(values)
    return results


def tag_bag(texts: dask.bag.Bag, model: str | os.PathLike, *,
            batch_size: int = 256) -> dask.bag.Bag:
    """A bag of texts (strings) to a bag of their results (dicts as `tag -f jsonl` writes
    them), in the same order.

    Args:
        texts: a ``dask.bag.Bag`` of strings, each a document.
        model: a model file's path, the same on every worker.
        batch_size: sentences run through the network together.
    """
    return texts.map_partitions(tag_texts, str(model), batch_size=batch_size)


def tag_series(texts, model: str | os.PathLike, *, batch_size: int = 256):
    """A dask dataframe column (``dask.dataframe.Series``) of texts to a column of their
    results (dicts, dtype object), with the same index.

    Args:
        texts: the column of strings.
        model: a model file's path, the same on every worker.
        batch_size: sentences run through the network together.
    """
    return texts.map_partitions(_tag_pandas, str(model), batch_size,
                                meta=(texts.name, "object"))


def _tag_pandas(texts, model: str, batch_size: int):
    import pandas as pd

    return pd.Series(tag_texts(list(texts), model, batch_size=batch_size), index=texts.index,
                     name=texts.name, dtype="object")
