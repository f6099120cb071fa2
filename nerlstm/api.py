"""The library functions behind the commands: training, evaluation, loading a tagger.

Each takes plain arguments, returns its results as objects, prints nothing (progress goes to
an optional listener) and raises :class:`nerlstm.errors.NerlstmError` on bad input. The CLI
is a thin layer over them.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from nerlstm import runtime
from nerlstm.config import Config
from nerlstm.errors import NerlstmError
from nerlstm.results import TaggedText

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
              encoding: str = "utf-8", scheme: str = "auto", data_format: str = "auto",
              misaligned: str = "snap", hf_tokens: str = "tokens", hf_tags: str = "ner_tags",
              hf_document: str = "document", label_map: str = "",
              tokenizer: str = "default") -> TaggedData:
    """Tagged data, every tag checked, its scheme detected unless given: a CoNLL column file,
    a JSONL span file (texts cut by ``tokenizer``) or ``hf:NAME[:SPLIT]``, a Hugging Face
    dataset; see :class:`nerlstm.config.DataSettings` for the other settings."""
    from nerlstm.datafiles import Reading
    from nerlstm.datafiles import read_data as read_any

    return read_any(str(path), Reading(token_column, tag_column, encoding, scheme, data_format,
                                       misaligned, hf_tokens, hf_tags, hf_document, label_map,
                                       tokenizer))


def convert(source: PathLike, output: PathLike, *, to: str = "auto", tags: str = "iob2",
            tokenizer: str = "default", token_column: int = 0, tag_column: int = -1,
            encoding: str = "utf-8", scheme: str = "auto", data_format: str = "auto",
            misaligned: str = "snap", hf_tokens: str = "tokens", hf_tags: str = "ner_tags",
            hf_document: str = "document", label_map: str = "") -> TaggedData:
    """Write tagged data in another format: CoNLL columns (token and tag) or JSONL spans,
    documents kept; ``-`` reads stdin or writes stdout, and a file is written whole or not
    at all.

    Args:
        source: a CoNLL or JSONL file, or ``hf:NAME[:SPLIT]``.
        output: the file to write.
        to: ``conll``, ``jsonl``, or ``auto``: by the output's extension, else the other
            format than the source's (CoNLL for a dataset).
        tags: the tag scheme CoNLL output is written in (``iob2``, ``iob1``, ``bioes``).
        tokenizer: how JSONL texts without tokens are cut.
        token_column, tag_column, encoding, scheme, data_format, misaligned, hf_tokens,
            hf_tags, hf_document, label_map: how the source is read (see :func:`read_data`).

    Returns:
        The data as read.
    """
    from nerlstm.datafiles import write_conll
    from nerlstm.jsonl import write_jsonl
    from nerlstm.textio import output_file

    if to not in ("auto", "conll", "jsonl"):
        raise NerlstmError(f"--to {to}: expected auto, conll or jsonl", exit_code=2)
    if tags not in ("iob2", "iob1", "bioes"):
        raise NerlstmError(f"--tags {tags}: expected iob2, iob1 or bioes", exit_code=2)
    data = read_data(source, token_column=token_column, tag_column=tag_column,
                     encoding=encoding, scheme=scheme, data_format=data_format,
                     misaligned=misaligned, hf_tokens=hf_tokens, hf_tags=hf_tags,
                     hf_document=hf_document, label_map=label_map, tokenizer=tokenizer)
    if to == "auto":
        suffix = os.path.splitext(str(output))[1].lower()
        if suffix in (".jsonl", ".json"):
            to = "jsonl"
        elif suffix in (".conll", ".txt", ".iob", ".bio", ".tsv"):
            to = "conll"
        else:
            to = "jsonl" if data.format == "conll" else "conll"
    with output_file(str(output)) as out:
        if to == "jsonl":
            write_jsonl(data.sentences, out)
        else:
            write_conll(data.sentences, out, tags)
    return data


def train(train: PathLike, model: PathLike, *, dev: PathLike | None = None,
          config: Config | None = None, vocab_from: Sequence[PathLike] = (),
          token_column: int = 0, tag_column: int = -1, encoding: str = "utf-8",
          scheme: str = "auto", data_format: str = "auto", misaligned: str = "snap",
          hf_tokens: str = "tokens", hf_tags: str = "ner_tags", hf_document: str = "document",
          label_map: str = "", threads: int | None = None, device: str = "auto",
          resume: PathLike | None = None, listener: TrainingListener | None = None,
          stop: list[int] | None = None) -> TrainingResult:
    """Train a tagger on tagged data and keep the best-on-dev model at ``model``.

    Args:
        train: training data: a CoNLL column file, a JSONL span file or ``hf:NAME[:SPLIT]``.
        model: where to write the model (``model + ".metrics.jsonl"`` gets the metrics, and
            ``model + ".ckpt"`` a checkpoint while the run goes on).
        dev: dev data: picks the best epoch and stops early.
        config: the model and training settings (default: :class:`Config`'s defaults).
        vocab_from: with pretrained embeddings, more files whose words join the vocabulary.
        token_column, tag_column, encoding, scheme, data_format, misaligned, hf_tokens,
            hf_tags, hf_document, label_map: how the data is read (see :func:`read_data`;
            JSONL texts are cut by the config's tokenizer).
        threads: CPU threads; None uses the cores that other processes leave free.
        device: ``auto``, ``cpu`` or ``cuda``.
        resume: a checkpoint an interrupted run left; its config is used.
        listener: receives progress (see :class:`nerlstm.training.TrainingListener`).
        stop: a list that a signal handler appends to, to stop after the current batch.

    Returns:
        A :class:`nerlstm.training.TrainingResult`.

    Raises:
        NerlstmError: on bad data, settings, paths or checkpoints.

    Started by ``torchrun`` (``WORLD_SIZE`` over 1), each process is one rank of a
    data-parallel run (see :mod:`nerlstm.distributed`).
    """
    from nerlstm.distributed import from_environment
    from nerlstm.torch_compat import numerics_environment
    from nerlstm.training import (
        TrainingListener,
        TrainingResult,
        check_same_data,
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
    shard = from_environment()
    if shard is not None:
        device, threads = shard.device(device), threads or shard.default_threads()
        shard.start(device)
    governor = thread_governor(threads, device)
    checkpoint = resume_from(str(resume)) if resume else None
    reading = {"token_column": token_column, "tag_column": tag_column, "encoding": encoding,
               "scheme": scheme, "data_format": data_format, "misaligned": misaligned,
               "hf_tokens": hf_tokens, "hf_tags": hf_tags, "hf_document": hf_document,
               "label_map": label_map}
    # JSONL texts are cut as the model will cut text to tag
    tokenizer = (Config.from_saved(checkpoint["model"]["config"]) if checkpoint else
                 config).tokenizer
    train_data = read_data(train, tokenizer=tokenizer, **reading)
    dev_data = read_data(dev, tokenizer=tokenizer, **reading) if dev else None
    listener.data_read("train", train_data)
    if dev_data is not None:
        listener.data_read("dev", dev_data)
    summary = {"train": train_data.describe(), "dev": dev_data.describe() if dev_data else None,
               "reading": {**reading, "vocab_from": [str(path) for path in vocab_from]},
               # where the arithmetic ran: two machines' runs part where this differs
               "numerics": numerics_environment()}
    vectors, more_tokens = None, []
    if checkpoint is not None:
        check_same_data(checkpoint, summary, str(resume))
        config = Config.from_saved(checkpoint["model"]["config"])
        listener.resumed(str(resume), checkpoint["progress"]["epoch"])
    elif config.embeddings:
        more_tokens = [s.tokens for s in dev_data.sentences] if dev_data else []
        for path in vocab_from:
            more_tokens += [s.tokens for s in _read_tokens(path, reading, tokenizer)]
        vectors, coverage = vectors_for_run(config.embeddings, train_data.sentences, more_tokens)
        listener.vectors_read(config.embeddings, coverage)
    listener.config_chosen(config)
    early = shard.agreed(stop or []) if shard is not None else stop
    if early:
        return TrainingResult(stopped_by_signal=early[0])
    try:
        return train_tagger(train_data.sentences, dev_data.sentences if dev_data else None,
                            config, model_path=str(model), device=device, data_summary=summary,
                            listener=listener, resume=checkpoint, vectors=vectors,
                            more_tokens=more_tokens, stop=stop, governor=governor, shard=shard)
    finally:
        if shard is not None:
            shard.close()


def _read_tokens(path: PathLike, reading: dict, tokenizer: str):
    from nerlstm.datafiles import Reading
    from nerlstm.datafiles import read_data as read_any

    return read_any(str(path), Reading(**reading, tokenizer=tokenizer), tags=False).sentences


def load_tagger(model: PathLike, *, device: str = "auto", threads: int | None = None,
                precision: str = "float32") -> tuple[Tagger, dict]:
    """The tagger in a model file, set up to tag on ``threads`` CPU threads (None: the free
    cores) in ``precision`` (float32 or bfloat16); and the file's contents. A ``.onnx`` file
    (``nerlstm export``) gives the ONNX tagger, which never imports torch."""
    if str(model).lower().endswith(".onnx"):  # onnxruntime and numpy, no torch
        from nerlstm.onnx_tagger import load_onnx_tagger

        return load_onnx_tagger(model, device=device, threads=threads, precision=precision)
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
        absent_types: entity types the model knows that the data never holds (each one it
            predicts is a false positive: a label map may be missing).
        notes: what the caller should know (a training file not found, ...).
    """

    scores: dict
    data: TaggedData
    predicted: list[list[str]]
    unseen_types: list[str] = field(default_factory=list)
    absent_types: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def evaluate(data: PathLike, model: PathLike, *, strict: bool = False, batch_size: int = 256,
             alone: bool = False, errors: bool = False, train: PathLike | None = None,
             token_column: int = 0, tag_column: int = -1, encoding: str = "utf-8",
             scheme: str = "auto", data_format: str = "auto", misaligned: str = "snap",
             hf_tokens: str = "tokens", hf_tags: str = "ner_tags", hf_document: str = "document",
             label_map: str = "", threads: int | None = None, device: str = "auto",
             precision: str = "float32") -> Evaluation:
    """Score a model on tagged data: entity-level precision, recall and F1, as conlleval.

    Args:
        data: the tagged data to score: a CoNLL column file, a JSONL span file (texts cut by
            the model's tokenizer) or ``hf:NAME[:SPLIT]``.
        model: the model file.
        strict: seqeval's strict mode (IOB2 chunks must be well formed).
        batch_size: sentences tagged together.
        alone: read each sentence alone, not with its document.
        errors: also break the errors down (kinds, confusions, seen versus unseen).
        train: the training data for seen/unseen scores (default: the model's own, if the
            file is still there).
        token_column, tag_column, encoding, scheme, data_format, misaligned, hf_tokens,
            hf_tags, hf_document, label_map: how ``data`` is read (see :func:`read_data`).
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

    reading = {"token_column": token_column, "tag_column": tag_column, "encoding": encoding,
               "data_format": data_format, "misaligned": misaligned, "hf_tokens": hf_tokens,
               "hf_tags": hf_tags, "hf_document": hf_document}
    # the model first: JSONL texts are cut by its tokenizer
    tagger, payload = load_tagger(model, device=device, threads=threads, precision=precision)
    tokenizer = tagger.model.config.tokenizer
    tagged = read_data(data, scheme=scheme, label_map=label_map, tokenizer=tokenizer, **reading)
    scores, predicted = score(tagger, tagged.sentences, strict=strict, batch_size=batch_size,
                              alone=alone)
    known = {tag[2:] for tag in tagger.encoder.tags.symbols if tag != "O"}
    result = Evaluation(scores, tagged, predicted,
                        unseen_types(tagged.sentences, tagger.encoder.tags.symbols),
                        sorted(known - set(tagged.entity_counts)))
    if errors:
        train_file = train or training_file_of(payload)
        seen = None
        if train_file is not None:
            seen = entity_texts(read_data(train_file, tokenizer=tokenizer, **reading).sentences)
        else:
            result.notes.append("training data not found: no seen/unseen scores (give --train)")
        scores["errors"] = error_analysis([s.tokens for s in tagged.sentences],
                                          [s.tags for s in tagged.sentences], predicted,
                                          seen=seen)
    return result


def training_file_of(payload: dict) -> str | None:
    """The training file a model file names, if it is still there (a dataset name is
    taken as there)."""
    recorded = ((payload.get("summary") or {}).get("train") or {}).get("path")
    there = recorded and (Path(recorded).is_file() or recorded.startswith("hf:"))
    return recorded if there else None


class TextTagger:
    """A trained model, ready to tag text: what :func:`load` returns.

    Call it on a text for one result, :meth:`pipe` for a stream of texts, and
    :meth:`tag_tokens` for sentences that are already token lists. Each text is one
    document: a model trained with document context reads its sentences together.

    Example:
        >>> tagger = nerlstm.load("model.pt")
        >>> [(e.text, e.label) for e in tagger("Peter Blackburn visited Paris.").entities]
        [('Peter Blackburn', 'PER'), ('Paris', 'LOC')]
    """

    def __init__(self, tagger: Tagger, payload: dict) -> None:
        self._tagger = tagger
        self._payload = payload

    @property
    def labels(self) -> list[str]:
        """The entity types the model knows."""
        return sorted({tag[2:] for tag in self._tagger.encoder.tags.symbols if tag != "O"})

    @property
    def tokenizer(self) -> str:
        """How the model cuts text into tokens: ``default``, ``whitespace`` or ``chars``."""
        return self._tagger.model.config.tokenizer

    @property
    def config(self) -> Config:
        """The settings the model was trained with."""
        return self._tagger.model.config

    def __call__(self, text: str, *, scores: bool = True) -> TaggedText:
        """Tag one text (one document; it may hold many lines and sentences).

        Args:
            text: the text.
            scores: give each entity its probability (a little slower).

        Returns:
            A :class:`nerlstm.results.TaggedText`: entities and tokens with character
            offsets into ``text``.

        Raises:
            TypeError: if ``text`` is not a string.
        """
        return next(self.pipe([text], scores=scores))

    def pipe(self, texts: Iterable[str], batch_size: int = 256, *,
             scores: bool = True) -> Iterator[TaggedText]:
        """Tag a stream of texts, each a document, yielding results in order as they are
        ready; memory stays flat however many texts there are.

        Args:
            texts: any iterable of strings (a list, a file's lines, a generator).
            batch_size: sentences run through the network together.
            scores: give each entity its probability.

        Raises:
            TypeError: if an item is not a string.
        """
        from nerlstm.records import tag_records, tagged_text, text_record

        def records() -> Iterator:
            for number, text in enumerate(texts):
                if not isinstance(text, str):
                    raise TypeError(f"pipe() takes strings, got {type(text).__name__} at "
                                    f"position {number} (for token lists use tag_tokens)")
                record = text_record(text, self.tokenizer)
                record.document = number
                yield record

        for record, tagged in tag_records(self._tagger, records(), batch_size=batch_size,
                                          scores=scores):
            yield tagged_text(record, tagged)

    def tag_tokens(self, sentences: Sequence[Sequence[str]], *, document: bool = False,
                   scores: bool = True, batch_size: int = 256) -> list[TaggedText]:
        """Tag sentences given as token lists.

        Args:
            sentences: a list of sentences, each a list of token strings.
            document: read the sentences together as one document (default: each alone).
            scores: give each entity its probability.
            batch_size: sentences run through the network together.

        Returns:
            One result per sentence; its text is the tokens joined by spaces, and the
            offsets point into that text.

        Raises:
            TypeError: if ``sentences`` is a string, or a sentence is not a list of strings.
        """
        from nerlstm.records import Record, tag_records, tagged_text

        if isinstance(sentences, str):
            raise TypeError("tag_tokens() takes a list of sentences, each a list of tokens, "
                            "not a string (for text use tagger(text) or tagger.pipe)")
        records = []
        for number, tokens in enumerate(sentences):
            if isinstance(tokens, str) or not all(isinstance(token, str) for token in tokens):
                raise TypeError(f"tag_tokens(): sentence {number} is "
                                f"{type(tokens).__name__ if isinstance(tokens, str) else 'not'}"
                                f" a list of token strings")
            offsets, position = [], 0
            for token in tokens:
                offsets.append((token, position, position + len(token)))
                position += len(token) + 1
            records.append(Record(" ".join(tokens), offsets,
                                  document=0 if document else number))
        return [tagged_text(record, tagged) for record, tagged in
                tag_records(self._tagger, records, batch_size=batch_size, scores=scores)]


def load(path: PathLike, device: str = "cpu", *, threads: int | None = None,
         precision: str = "float32") -> TextTagger:
    """Load a model file to tag with.

    Args:
        path: a model file written by ``nerlstm train``, or an ``.onnx`` file written by
            ``nerlstm export`` (tags on onnxruntime and numpy, without torch).
        device: ``cpu``, ``cuda`` or ``auto``.
        threads: CPU threads (None: the cores other processes leave free). Sets torch's
            thread count for the process.
        precision: ``float32``, or ``bfloat16`` where the CPU has bfloat16 instructions.

    Raises:
        NerlstmError: if the file is missing, not a model file, or damaged.
    """
    tagger, payload = load_tagger(path, device=device, threads=threads, precision=precision)
    return TextTagger(tagger, payload)
