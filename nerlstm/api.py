"""The library functions behind the commands: training, evaluation, loading a tagger.

Each takes plain arguments, returns its results as objects, prints nothing (progress goes to
an optional listener) and raises :class:`nerlstm.errors.NerlstmError` on bad input. The CLI
is a thin layer over them.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from nerlstm import runtime
from nerlstm.config import Config
from nerlstm.errors import NerlstmError

if TYPE_CHECKING:
    from nerlstm.conll import TaggedData
    from nerlstm.tagging import Tagger
    from nerlstm.training import TrainingListener, TrainingResult

PathLike = str | os.PathLike


def choose_device(device: str) -> str:
    """``cpu`` or ``cuda`` for ``auto``, ``cpu`` or ``cuda``; refuses cuda without a GPU."""
    import torch

    if device not in ("auto", "cpu", "cuda"):
        raise NerlstmError(f"device {device!r}: expected auto, cpu or cuda", exit_code=2)
    if device == "cuda" and not torch.cuda.is_available():
        raise NerlstmError("--device cuda: no CUDA GPU is available here (use --device cpu)",
                           exit_code=2)
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def default_threads() -> int:
    """Threads for a run given none: the cores other processes have left free since nerlstm
    was imported (all of torch's when that cannot be told)."""
    import torch

    most = torch.get_num_threads()
    return runtime.free_threads(runtime.STARTED, runtime.cpu_sample(), most) or most


def thread_governor(threads: int | None, device: str) -> runtime.ThreadGovernor | None:
    """Set torch's threads: ``threads`` if given; otherwise the free cores, looked at again
    while training runs (the governor returned)."""
    import torch

    if threads:
        torch.set_num_threads(threads)
        return None
    if device != "cpu":
        return None
    governor = runtime.ThreadGovernor(torch.get_num_threads(), torch.set_num_threads,
                                      since=runtime.STARTED)
    governor.look()
    return governor


def read_data(path: PathLike, *, token_column: int = 0, tag_column: int = -1,
              encoding: str = "utf-8", scheme: str = "auto") -> TaggedData:
    """A tagged column file, every tag checked, its scheme detected unless given."""
    from nerlstm.conll import read_tagged

    return read_tagged(str(path), token_column=token_column, tag_column=tag_column,
                       encoding=encoding, scheme=scheme)


def train(train: PathLike, model: PathLike, *, dev: PathLike | None = None,
          config: Config | None = None, vocab_from: Sequence[PathLike] = (),
          token_column: int = 0, tag_column: int = -1, encoding: str = "utf-8",
          scheme: str = "auto", threads: int | None = None, device: str = "auto",
          resume: PathLike | None = None, listener: TrainingListener | None = None,
          stop: list[int] | None = None) -> TrainingResult:
    """Train a tagger on a CoNLL file and keep the best-on-dev model at ``model``.

    Args:
        train: training data, a CoNLL column file.
        model: where to write the model (``model + ".metrics.jsonl"`` gets the metrics, and
            ``model + ".ckpt"`` a checkpoint while the run goes on).
        dev: dev data: picks the best epoch and stops early.
        config: the model and training settings (default: :class:`Config`'s defaults).
        vocab_from: with pretrained embeddings, more files whose words join the vocabulary.
        token_column, tag_column, encoding, scheme: how the files are read.
        threads: CPU threads; None uses the cores that other processes leave free.
        device: ``auto``, ``cpu`` or ``cuda``.
        resume: a checkpoint an interrupted run left; its config is used.
        listener: receives progress (see :class:`nerlstm.training.TrainingListener`).
        stop: a list that a signal handler appends to, to stop after the current batch.

    Returns:
        A :class:`nerlstm.training.TrainingResult`.

    Raises:
        NerlstmError: on bad data, settings, paths or checkpoints.
    """
    from nerlstm.training import (
        TrainingListener,
        TrainingResult,
        check_writable,
        resume_from,
        vectors_for_run,
    )
    from nerlstm.training import (
        train as train_tagger,
    )

    listener = listener or TrainingListener()
    config = (config or Config()).checked()
    check_writable(str(model))
    device = choose_device(device)
    governor = thread_governor(threads, device)
    checkpoint = resume_from(str(resume)) if resume else None
    reading = {"token_column": token_column, "tag_column": tag_column, "encoding": encoding,
               "scheme": scheme}
    train_data = read_data(train, **reading)
    dev_data = read_data(dev, **reading) if dev else None
    listener.data_read("train", train_data)
    if dev_data is not None:
        listener.data_read("dev", dev_data)
    summary = {"train": train_data.describe(), "dev": dev_data.describe() if dev_data else None,
               "reading": {**reading, "vocab_from": [str(path) for path in vocab_from]}}
    vectors, more_tokens = None, []
    if checkpoint is not None:
        resume_from(str(resume), summary)  # the same data as the run was started on
        config = Config.from_dict(checkpoint["model"]["config"])
        listener.resumed(str(resume), checkpoint["progress"]["epoch"])
    elif config.embeddings:
        more_tokens = [s.tokens for s in dev_data.sentences] if dev_data else []
        for path in vocab_from:
            more_tokens += [s.tokens for s in _read_tokens(path, token_column, encoding)]
        vectors, coverage = vectors_for_run(config.embeddings, train_data.sentences, more_tokens)
        listener.vectors_read(config.embeddings, coverage)
    listener.config_chosen(config)
    if stop:
        return TrainingResult(stopped_by_signal=stop[0])
    return train_tagger(train_data.sentences, dev_data.sentences if dev_data else None, config,
                        model_path=str(model), device=device, data_summary=summary,
                        listener=listener, resume=checkpoint, vectors=vectors,
                        more_tokens=more_tokens, stop=stop, governor=governor)


def _read_tokens(path: PathLike, token_column: int, encoding: str):
    from nerlstm.conll import read_conll

    return read_conll(str(path), encoding=encoding, token_column=token_column, tag_column=None)


def load_tagger(model: PathLike, *, device: str = "auto", threads: int | None = None,
                precision: str = "float32") -> tuple[Tagger, dict]:
    """The tagger in a model file, set up to tag on ``threads`` CPU threads (None: the free
    cores) in ``precision`` (float32 or bfloat16); and the file's contents."""
    from nerlstm.modelfile import load_model
    from nerlstm.tagging import tag_on_cpu_threads, use_precision

    device = choose_device(device)
    tagger, payload = load_model(str(model), device)
    if device == "cpu":
        tag_on_cpu_threads(tagger, threads or default_threads())
    use_precision(tagger, precision)
    return tagger, payload


@dataclass
class Evaluation:
    """What :func:`evaluate` found.

    Attributes:
        scores: micro and macro precision, recall and F1, per type, and counts; with
            ``errors``, an ``errors`` entry (see :func:`nerlstm.evaluation.error_analysis`).
        data: the scored file as read.
        predicted: the predicted IOB2 tags of each sentence.
        unseen_types: entity types of the data that the model never saw.
        notes: what the caller should know (a training file not found, ...).
    """

    scores: dict
    data: TaggedData
    predicted: list[list[str]]
    unseen_types: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def evaluate(data: PathLike, model: PathLike, *, strict: bool = False, batch_size: int = 256,
             alone: bool = False, errors: bool = False, train: PathLike | None = None,
             token_column: int = 0, tag_column: int = -1, encoding: str = "utf-8",
             scheme: str = "auto", threads: int | None = None, device: str = "auto",
             precision: str = "float32") -> Evaluation:
    """Score a model on a tagged CoNLL file: entity-level precision, recall and F1, as
    conlleval.

    Args:
        data: the tagged file to score.
        model: the model file.
        strict: seqeval's strict mode (IOB2 chunks must be well formed).
        batch_size: sentences tagged together.
        alone: read each sentence alone, not with its document.
        errors: also break the errors down (kinds, confusions, seen versus unseen).
        train: the training data for seen/unseen scores (default: the model's own, if the
            file is still there).
        token_column, tag_column, encoding, scheme: how ``data`` is read.
        threads, device, precision: how the model runs.

    Raises:
        NerlstmError: on a bad data or model file, or bad settings.
    """
    from nerlstm.evaluation import (
        entity_texts,
        error_analysis,
        unseen_types,
    )
    from nerlstm.evaluation import (
        evaluate as score,
    )

    reading = {"token_column": token_column, "tag_column": tag_column, "encoding": encoding}
    tagged = read_data(data, scheme=scheme, **reading)
    tagger, payload = load_tagger(model, device=device, threads=threads, precision=precision)
    scores, predicted = score(tagger, tagged.sentences, strict=strict, batch_size=batch_size,
                              alone=alone)
    result = Evaluation(scores, tagged, predicted,
                        unseen_types(tagged.sentences, tagger.encoder.tags.symbols))
    if errors:
        train_file = train or training_file_of(payload)
        seen = None
        if train_file is not None:
            seen = entity_texts(read_data(train_file, **reading).sentences)
        else:
            result.notes.append("training data not found: no seen/unseen scores (give --train)")
        scores["errors"] = error_analysis([s.tokens for s in tagged.sentences],
                                          [s.tags for s in tagged.sentences], predicted,
                                          seen=seen)
    return result


def training_file_of(payload: dict) -> str | None:
    """The training file a model file names, if it is still there."""
    recorded = ((payload.get("summary") or {}).get("train") or {}).get("path")
    return recorded if recorded and Path(recorded).is_file() else None
