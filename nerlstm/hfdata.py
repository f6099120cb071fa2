"""Reading Hugging Face datasets: ``hf:NAME_OR_PATH[:SPLIT]`` wherever a data file is taken.

A dataset saved with ``save_to_disk`` is read from its folder; any other name goes through
``datasets.load_dataset``, which reads the local cache when offline (``HF_DATASETS_OFFLINE=1``).
Each row is a sentence: a column of tokens and a column of tags, either tag strings or ids
with ClassLabel names. Documents come from a document column where there is one (consecutive
rows with one value), else from ``-DOCSTART-`` rows as some conversions of CoNLL keep them;
otherwise the whole split is one document, as a column file without ``-DOCSTART-`` is.

``datasets`` is an optional dependency (``pip install 'nerlstm[hf]'``), imported only here
and only when such a name is read. No torch here.
"""

from __future__ import annotations

import os
from typing import Any

from nerlstm.conll import DOCSTART, Sentence
from nerlstm.errors import NerlstmError
from nerlstm.schemes import is_valid_tag

PREFIX = "hf:"


def is_hf(path: str) -> bool:
    return str(path).startswith(PREFIX)


def require_datasets() -> Any:
    """The datasets module, or a one-line error saying how to install it."""
    try:
        import datasets
    except ImportError:
        raise NerlstmError("reading hf: datasets needs the datasets library: pip install "
                           "'nerlstm[hf]'", exit_code=2) from None
    datasets.disable_progress_bars()  # stderr is for what nerlstm says
    datasets.logging.set_verbosity_error()
    return datasets


def split_name(spec: str) -> tuple[str, str | None]:
    """``hf:NAME_OR_PATH[:SPLIT]`` as (name or path, split or None). A path that exists is
    taken whole, colons and all."""
    body = spec[len(PREFIX):]
    if os.path.exists(body) or ":" not in body:
        return body, None
    name, split = body.rsplit(":", 1)
    return name, split or None


def _load(spec: str) -> Any:
    datasets = require_datasets()
    name, split = split_name(spec)
    if not name:
        raise NerlstmError("no dataset named: expected hf:NAME_OR_PATH[:SPLIT]", path=spec,
                           exit_code=2)
    try:
        if os.path.isdir(name):
            loaded = datasets.load_from_disk(name)
        else:
            loaded = datasets.load_dataset(name, split=split)
            split = None  # load_dataset has chosen it
    except Exception as error:  # the library raises many kinds; the message is what helps
        message = str(error).strip().split("\n")[0] or type(error).__name__
        raise NerlstmError(f"cannot load the dataset: {message} (expected a folder written by "
                           f"save_to_disk, or a dataset in the local cache)",
                           path=spec) from None
    if isinstance(loaded, datasets.DatasetDict):
        splits = list(loaded)
        if split is None and len(splits) == 1:
            split = splits[0]
        if split not in loaded:
            found = "no split given" if split is None else f"no split {split!r}"
            raise NerlstmError(f"{found}: expected one of {', '.join(splits)} (as "
                               f"hf:{name}:{splits[-1]})", path=spec, exit_code=2)
        return loaded[split]
    if split is not None:
        raise NerlstmError(f"the dataset has no splits, so :{split} names none: expected "
                           f"hf:{name}", path=spec, exit_code=2)
    return loaded


def _tag_names(dataset: Any, column: str) -> list[str] | None:
    """The ClassLabel names of a column of tag ids, or None for a column of strings."""
    feature = dataset.features[column]
    inner = getattr(feature, "feature", None)
    names = getattr(inner, "names", None)
    return list(names) if names else None


def read_hf(spec: str, *, tokens: str = "tokens", tags: str | None = "ner_tags",
            document: str = "document") -> list[Sentence]:
    """The sentences of a dataset split, as a column file gives them (``line`` is the row
    number, from 1, and errors name it as a line). ``tags`` None reads the tokens only.

    Raises:
        NerlstmError: if datasets is missing, the dataset cannot be loaded, a column is
            missing or tag ids have no names.
    """
    dataset = _load(spec)
    columns = list(dataset.column_names)
    wanted = [(tokens, "--hf-tokens")] + ([(tags, "--hf-tags")] if tags else [])
    for column, flag in wanted:
        if column not in columns:
            raise NerlstmError(f"no column {column!r}: the dataset has {', '.join(columns)} "
                               f"(use {flag})", path=spec, exit_code=2)
    names = _tag_names(dataset, tags) if tags else None
    has_document = document in columns
    chosen = [tokens] + ([tags] if tags else []) + ([document] if has_document else [])
    rows = dataset.select_columns(chosen).to_dict()
    sentences: list[Sentence] = []
    number, previous = 0, object()
    for row, words in enumerate(rows[tokens]):
        if not isinstance(words, list) or not all(isinstance(word, str) for word in words):
            raise NerlstmError(f"column {tokens!r} is not a list of strings", path=spec,
                               line=row + 1)
        if has_document:
            value = rows[document][row]
            number += row > 0 and value != previous
            previous = value
        elif words[:1] == [DOCSTART]:
            number += 1  # a -DOCSTART- row starts a document, and is no sentence
            continue
        if not words:
            continue
        labels = None
        if tags:
            labels = rows[tags][row]
            if len(labels) != len(words):
                raise NerlstmError(f"{len(words)} tokens but {len(labels)} tags: expected a "
                                   f"tag for each token", path=spec, line=row + 1)
            if names is not None:
                labels = [names[label] for label in labels]
            elif not all(isinstance(label, str) for label in labels):
                raise NerlstmError(f"column {tags!r} holds tag ids without ClassLabel names: "
                                   f"expected tag strings or a ClassLabel feature", path=spec)
            # checked here, so that the error names the row (a column file's names the line)
            bad = next((index for index, label in enumerate(labels)
                        if not is_valid_tag(label)), None)
            if bad is not None:
                raise NerlstmError(f"tag {labels[bad]!r} of token {bad} fits no scheme: "
                                   f"expected O or B-, I-, E-, S- followed by a type",
                                   path=spec, line=row + 1)
        sentences.append(Sentence(list(words), labels, line=row + 1, document=number))
    if not sentences:
        raise NerlstmError("no sentences found: the split has no rows with tokens", path=spec)
    return sentences
