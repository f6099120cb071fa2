"""Training a tagger: epochs, dev scoring, early stopping, best model kept on disk."""

from __future__ import annotations

import contextlib
import ctypes
import functools
import glob
import json
import math
import os
import random
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING

import torch

from nerlstm import schemes
from nerlstm.batching import Batch, Encoder, batch_indices, context_batches, context_ids
from nerlstm.config import Config
from nerlstm.conll import Sentence, TaggedData
from nerlstm.embeddings import Vectors, initial_table, read_vectors, vector_for, wanted_keys
from nerlstm.errors import NerlstmError
from nerlstm.evaluation import micro_scores
from nerlstm.language_model import NeighbourWordObjective, word_classes
from nerlstm.model import BiLstmCrf
from nerlstm.modelfile import (
    CHECKPOINT_FORMAT,
    atomic_save,
    model_payload,
    read_checked,
    save_model,
    tagger_from_payload,
    update_summary,
)
from nerlstm.runtime import ThreadGovernor
from nerlstm.signals import stop_requests
from nerlstm.tagging import Tagger
from nerlstm.torch_compat import lerp_all_
from nerlstm.vocab import TagVocab, Vocab, build_vocabs, normalise_digits

if TYPE_CHECKING:
    from nerlstm.distributed import Replica, Shard


class TrainingListener:
    """Receives progress; the CLI renders it. Every method does nothing by default."""

    def data_read(self, split: str, data: TaggedData) -> None: ...

    def vectors_read(self, path: str, coverage: dict) -> None: ...

    def resumed(self, path: str, epoch: int) -> None: ...

    def config_chosen(self, config: Config) -> None: ...

    def vocabularies(self, words: int, chars: int, tags: list[str], scheme: str) -> None: ...

    def epoch_started(self, epoch: int, sentences: int) -> None: ...

    def batch_done(self, sentences: int, loss: float) -> None: ...

    def epoch_done(self, row: dict) -> None: ...


class _Average:
    """An average of a model's parameters, kept beside them; ``applied`` puts it in the model
    for a while (dev scoring, saving)."""

    def __init__(self, model: torch.nn.Module):
        self.parameters = list(model.parameters())
        self.average = [p.detach().clone() for p in self.parameters]
        self.updates = 0

    def update(self) -> None:
        """After each training step."""

    def epoch_done(self, epoch: int) -> None:
        """After each whole epoch."""

    @property
    def active(self) -> bool:
        return True

    @contextmanager
    def applied(self) -> Iterator[None]:
        """The model holds the averaged weights inside the block, its own ones after."""
        own = [p.detach().clone() for p in self.parameters]
        with torch.no_grad():
            for parameter, average in zip(self.parameters, self.average):
                parameter.copy_(average)
        try:
            yield
        finally:
            with torch.no_grad():
                for parameter, kept in zip(self.parameters, own):
                    parameter.copy_(kept)

    def state_dict(self) -> dict:
        return {"average": [a.cpu().clone() for a in self.average], "updates": self.updates}

    def load_state_dict(self, state: dict) -> None:
        with torch.no_grad():
            for average, saved in zip(self.average, state["average"]):
                average.copy_(saved)
        self.updates = state["updates"]


class WeightAverage(_Average):
    """An exponential moving average of a model's parameters, updated after each step.

    Averaging the last few hundred SGD steps smooths out their noise (Polyak averaging). Early
    on the decay is lowered, (1 + n) / (10 + n) after n updates, so that the average is not
    held back by the random initial weights.
    """

    def __init__(self, model: torch.nn.Module, decay: float):
        super().__init__(model)
        self.decay = decay

    def update(self) -> None:
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        with torch.no_grad():
            lerp_all_(self.average, [p.detach() for p in self.parameters], 1 - decay)
        self.updates += 1


class EpochAverage(_Average):
    """The mean of a model's parameters at the ends of the epochs from ``first_epoch`` on
    (stochastic weight averaging, Izmailov et al. 2018): the weights at the ends of late
    epochs lie around a flat region whose centre generalises better than any one of them."""

    def __init__(self, model: torch.nn.Module, first_epoch: int):
        super().__init__(model)
        self.first_epoch = first_epoch

    def epoch_done(self, epoch: int) -> None:
        if epoch < self.first_epoch:
            return
        self.updates += 1
        with torch.no_grad():
            lerp_all_(self.average, [p.detach() for p in self.parameters], 1.0 / self.updates)

    @property
    def active(self) -> bool:
        return self.updates > 0


class TrainingObjective(torch.nn.Module):
    """The loss a training step minimises: the tagger's, plus ``weight`` times a language
    model's when there is one (see :mod:`nerlstm.language_model`). Its parameters are the
    tagger's, then the language model's."""

    def __init__(self, model: BiLstmCrf, language_model: NeighbourWordObjective | None = None,
                 weight: float = 0.0) -> None:
        super().__init__()
        self.model, self.language_model, self.weight = model, language_model, weight

    def loss(self, batch: Batch) -> torch.Tensor:
        if self.language_model is None:
            return self.model.loss(batch)
        tagging, states = self.model.loss_and_states(batch)
        words = batch.words_as_read if batch.words_as_read is not None else batch.word_ids
        return tagging + self.weight * self.language_model(states, words, batch.mask)


@dataclass
class TrainingResult:
    """What a run did: per-epoch rows, the best epoch, and how it ended."""

    rows: list[dict] = field(default_factory=list)
    best_epoch: int | None = None
    best_dev: dict | None = None
    seconds: float = 0.0
    epochs_run: int = 0
    stopped_by_signal: int | None = None  # the signal number that interrupted training


@functools.cache
def _malloc_trim():
    """glibc's ``malloc_trim``, or None where the C library has none (macOS, musl)."""
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None


def release_free_memory() -> bool:
    """Give memory that the C allocator holds free back to the system; False where it cannot.

    Training's tensors of ever-changing sizes leave glibc's heap fragmented, so that the
    process grows well past its live data, and each epoch's dev scoring comes on top. Trimming
    every few dozen batches costs no measurable time (docs/performance.md has the figures).
    """
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True


# Batches between two calls of release_free_memory during training.
TRIM_EVERY_BATCHES = 50
# Dev scoring's batches: smaller than tagging's 256, since its peak memory comes on top of
# training's; a little slower, much lower (docs/performance.md).
DEV_BATCH_SIZE = 64


def metrics_log_path(model_path: str) -> str:
    return model_path + ".metrics.jsonl"


def build_tagger(train: Sequence[Sentence], config: Config, device: torch.device | str,
                 vectors: Vectors | None = None,
                 more_tokens: Sequence[Sequence[str]] = ()) -> Tagger:
    """A new, untrained tagger whose vocabularies come from the training sentences.

    With pretrained ``vectors``, the word table starts from them (its size follows the
    file), and words of ``more_tokens`` (dev data, --vocab-from files) that have a vector
    join the vocabulary, so that they keep it at test time.
    """
    words, chars, _ = build_vocabs((s.tokens for s in train),
                                   lowercase_words=config.lowercase_words)
    if vectors is not None:
        for tokens in more_tokens:
            for token in tokens:
                key = normalise_digits(token.lower() if config.lowercase_words else token)
                if key not in words and vector_for(token, vectors.vectors) is not None:
                    words.add(key)
        config = replace(config, word_dim=vectors.dim)
    types = sorted({span.type for s in train for span in schemes.spans(s.tags)})
    tags = TagVocab(schemes.tag_set(types, config.train_scheme))
    model = BiLstmCrf(config, len(words), len(chars), len(tags))
    if vectors is not None:
        table, _ = initial_table(words, vectors)
        with torch.no_grad():
            model.word_embedding.weight.copy_(table)
    model.word_embedding.weight.requires_grad_(not config.freeze_embeddings)
    return Tagger(model.to(device), Encoder(words, chars, tags, config.doc_context),
                  config.train_scheme, device)


def embedding_coverage(train: Sequence[Sentence], vectors: Vectors) -> dict:
    """Share of training tokens and word types that have a vector in the file."""
    types: dict[str, bool] = {}
    found_tokens = total_tokens = 0
    for sentence in train:
        for token in sentence.tokens:
            has = types.get(token)
            if has is None:
                has = types[token] = vector_for(token, vectors.vectors) is not None
            found_tokens += has
            total_tokens += 1
    return {"tokens": found_tokens / max(total_tokens, 1),
            "types": sum(types.values()) / max(len(types), 1),
            "words_in_file": vectors.words_in_file, "duplicates": vectors.duplicates,
            "dim": vectors.dim}


@dataclass
class Progress:
    """Where a run is: everything besides weights and random states needed to go on exactly."""

    epoch: int = 1                          # the epoch in progress
    order: list[list[int]] | None = None    # its batches, once drawn
    batches_done: int = 0                   # how many of them are trained
    total_loss: float = 0.0
    seen: int = 0
    best_f1: float = -1.0
    since_best: int = 0
    best_epoch: int | None = None
    best_dev: dict | None = None


def checkpoint_path(model_path: str) -> str:
    return model_path + ".ckpt"


def remove_stale_temporaries(model_path: str) -> None:
    """Delete temporary files that a killed run may have left beside the model."""
    folder = os.path.dirname(os.path.abspath(model_path))
    for name in (os.path.basename(model_path), os.path.basename(checkpoint_path(model_path))):
        for leftover in glob.glob(os.path.join(glob.escape(folder), f".{glob.escape(name)}.*.tmp")):
            with contextlib.suppress(OSError):
                os.unlink(leftover)


@dataclass
class Run:
    """What a training run holds between its steps."""

    tagger: Tagger
    config: Config
    objective: TrainingObjective
    optimizer: torch.optim.Optimizer
    averaged: WeightAverage | EpochAverage | None
    progress: Progress
    rng: random.Random
    data: TrainingData
    model_path: str
    data_summary: dict
    shard: Shard | None = None  # this process's place in a data-parallel run
    replica: Replica | None = None  # the model as its steps train it, gradients shared

    @property
    def writes(self) -> bool:
        """Whether this process writes the model, checkpoint and log (all but ranks > 0)."""
        return self.shard is None or self.shard.writes

    def summary(self, epochs_run: int) -> dict:
        """The training summary a model file keeps."""
        return {**self.data_summary, "best_epoch": self.progress.best_epoch,
                "best_dev": self.progress.best_dev, "epochs_run": epochs_run}

    def scored_weights(self) -> contextlib.AbstractContextManager:
        """Dev scores and saved models use the averaged weights, if any; training goes on
        with its own."""
        if self.averaged is not None and self.averaged.active:
            return self.averaged.applied()
        return contextlib.nullcontext()


def start_run(train_sentences: Sequence[Sentence], config: Config, *, model_path: str,
              device: torch.device | str = "cpu", data_summary: dict | None = None,
              resume: dict | None = None, vectors: Vectors | None = None,
              more_tokens: Sequence[Sequence[str]] = ()) -> Run:
    """A new run (a fresh tagger from the training data), or one resumed from a checkpoint."""
    if resume is None:
        torch.manual_seed(config.seed)
        rng = random.Random(config.seed)
        tagger = build_tagger(train_sentences, config, device, vectors, more_tokens)
        progress = Progress()
    else:
        tagger = tagger_from_payload(resume["model"], device)
        rng = random.Random()
        rng.setstate(resume["python_rng"])
        progress = Progress(**resume["progress"])
    config = tagger.model.config  # a checkpoint's own; pretrained vectors set word_dim
    data = TrainingData(train_sentences, tagger.encoder, config, device)
    objective = TrainingObjective(tagger.model, language_model_for(config, data, resume),
                                  config.lm_weight).to(device)
    optimizer = make_optimizer(objective, config)
    averaged: WeightAverage | EpochAverage | None = None
    if config.average_decay > 0:
        averaged = WeightAverage(tagger.model, config.average_decay)
    elif config.average_from > 0:
        averaged = EpochAverage(tagger.model, config.average_from)
    if resume is not None:
        optimizer.load_state_dict(resume["optimizer"])
        torch.set_rng_state(resume["torch_rng"])
        if averaged is not None:
            averaged.load_state_dict(resume["average"])
    return Run(tagger, config, objective, optimizer, averaged, progress, rng, data, model_path,
               data_summary or {})


def language_model_for(config: Config, data: TrainingData, resume: dict | None
                       ) -> NeighbourWordObjective | None:
    """The language-modelling objective of a run, new or as its checkpoint left it."""
    if config.lm_weight == 0:
        return None
    saved = (resume or {}).get("language_model")
    if saved is not None:
        language_model = NeighbourWordObjective(config.hidden, saved["classes_of_words"])
        language_model.load_state_dict(saved)
        return language_model
    return NeighbourWordObjective(config.hidden, word_classes(data.encoder.words,
                                                              data.word_counts))


def epoch_learning_rate(config: Config, epoch: int) -> float:
    """The learning rate of 1-based ``epoch`` under the config's schedule (for the cyclic
    schedule, its mean over the epoch)."""
    if config.lr_schedule == "cosine":
        return config.lr * 0.5 * (1.0 + math.cos(math.pi * (epoch - 1) / config.epochs))
    return config.lr / (1 + config.lr_decay * (epoch - 1))


# The cyclic schedule's rate falls from this multiple of the epoch's rate to its complement
# over each epoch: the mean stays the inverse schedule's, and the epoch ends (where dev is
# scored and weights are averaged) at a tenth of it.
CYCLE_TOP = 1.9


def batch_learning_rate(config: Config, epoch: int, batch: int, batches: int) -> float:
    """The learning rate of 0-based ``batch`` of the epoch's ``batches``."""
    rate = epoch_learning_rate(config, epoch)
    if config.lr_schedule != "cyclic":
        return rate
    fraction = (batch + 1) / batches
    return rate * (CYCLE_TOP - (2 * CYCLE_TOP - 2) * fraction)


def train_epoch(run: Run, listener: TrainingListener, stop: list[int],
                governor: ThreadGovernor | None = None) -> float:
    """Train the batches of the epoch in progress that are not trained yet, until done or a
    stop is requested; returns the seconds it took."""
    progress, config, model = run.progress, run.config, run.tagger.model
    for group in run.optimizer.param_groups:
        group["lr"] = epoch_learning_rate(config, progress.epoch)
    if progress.order is None and run.shard is not None:
        progress.order = run.shard.epoch_order(run.data.epoch_order, config.seed, progress.epoch)
    elif progress.order is None:
        progress.order = run.data.epoch_order(run.rng)
    started = time.perf_counter()
    listener.epoch_started(progress.epoch, len(run.data.tokens))
    model.train()
    while progress.batches_done < len(progress.order) and not stop:
        indices = progress.order[progress.batches_done]
        if config.lr_schedule == "cyclic":
            for group in run.optimizer.param_groups:
                group["lr"] = batch_learning_rate(config, progress.epoch,
                                                  progress.batches_done, len(progress.order))
        loss = optimization_step(run.replica or run.objective, run.optimizer,
                                 run.data.batch(indices, run.rng),
                                 len(indices), config.clip)
        if run.averaged is not None:
            run.averaged.update()
        progress.total_loss += loss
        progress.seen += len(indices)
        progress.batches_done += 1
        listener.batch_done(len(indices), loss / len(indices))
        if progress.batches_done % TRIM_EVERY_BATCHES == 0:
            release_free_memory()
            if governor is not None:
                governor.look()
    if progress.batches_done == len(progress.order) and run.averaged is not None:
        run.averaged.epoch_done(progress.epoch)
    return time.perf_counter() - started


def score_dev(run: Run, dev_sentences: Sequence[Sentence], dev_contexts: list[int] | None
              ) -> dict:
    """Micro precision, recall and F1 of the model (its averaged weights, if any) on dev;
    with weights averaged over epochs, also the F1 of the weights as trained
    (``unaveraged_f1``), which shows what the averaging gives."""
    release_free_memory()  # dev scoring's peak comes on top of what is held
    tokens, gold = [s.tokens for s in dev_sentences], [s.tags for s in dev_sentences]
    with run.scored_weights():
        scores = micro_scores(gold, run.tagger.predict(tokens, DEV_BATCH_SIZE,
                                                       contexts=dev_contexts))
    if isinstance(run.averaged, EpochAverage) and run.averaged.active:
        own = micro_scores(gold, run.tagger.predict(tokens, DEV_BATCH_SIZE,
                                                    contexts=dev_contexts))
        scores["unaveraged_f1"] = own["f1"]
    return scores


def save_checkpoint(run: Run) -> None:
    """Everything needed to go on exactly where the run is, beside the model."""
    if not run.writes:
        return
    atomic_save({"format": CHECKPOINT_FORMAT, "format_version": 1,
                 "model": model_payload(run.tagger, run.summary(run.progress.epoch - 1)),
                 "optimizer": run.optimizer.state_dict(), "progress": asdict(run.progress),
                 "python_rng": run.rng.getstate(), "torch_rng": torch.get_rng_state(),
                 "average": run.averaged.state_dict() if run.averaged is not None else None,
                 "language_model": (run.objective.language_model.state_dict()
                                    if run.objective.language_model is not None else None),
                 "data": run.data_summary}, checkpoint_path(run.model_path))


def end_epoch(run: Run, dev: dict | None, seen_before: int, train_seconds: float,
              started: float) -> dict:
    """Keep the model if dev F1 improved (or always, without dev), move on to the next
    epoch, and return the epoch's metrics row."""
    progress = run.progress
    row = {"epoch": progress.epoch, "loss": progress.total_loss / progress.seen,
           "lr": run.optimizer.param_groups[0]["lr"], "train_seconds": train_seconds,
           "sentences_per_second": (progress.seen - seen_before) / train_seconds}
    if dev is not None:
        row.update({f"dev_{name}": value for name, value in dev.items()})
    improved = dev is None or dev["f1"] > progress.best_f1
    row["seconds"] = time.perf_counter() - started
    row["best"] = improved
    if improved:
        progress.best_f1 = dev["f1"] if dev else progress.best_f1
        progress.best_epoch, progress.best_dev = progress.epoch, dev
        progress.since_best = 0
        with run.scored_weights():
            if run.writes:
                save_model(run.tagger, run.model_path, run.summary(progress.epoch))
    else:
        progress.since_best += 1
    run.progress = Progress(progress.epoch + 1, None, 0, 0.0, 0, progress.best_f1,
                            progress.since_best, progress.best_epoch, progress.best_dev)
    return row


def train(train_sentences: Sequence[Sentence], dev_sentences: Sequence[Sentence] | None,
          config: Config, *, model_path: str, device: torch.device | str = "cpu",
          data_summary: dict | None = None, listener: TrainingListener | None = None,
          resume: dict | None = None, vectors: Vectors | None = None,
          more_tokens: Sequence[Sequence[str]] = (), stop: list[int] | None = None,
          governor: ThreadGovernor | None = None, shard: Shard | None = None
          ) -> TrainingResult:
    """Train a tagger and keep the best model at ``model_path``.

    With dev sentences, the model is saved whenever dev F1 improves, and training stops after
    ``config.patience`` epochs without improvement; without them, after every epoch (the last
    one is kept). A metrics log, one JSON object per epoch, is written beside the model, and a
    checkpoint (``model_path + ".ckpt"``) after every epoch and when a signal stops the run;
    ``resume`` (a loaded checkpoint) goes on from one exactly as if never stopped. A SIGINT
    or SIGTERM stops it after the current batch: ``stop`` is the list of a caller's
    ``stop_requests()``; without it, the handlers are installed for the run itself. A
    ``governor`` keeps the CPU threads at the cores that other processes leave free. With a
    ``shard``, this process is one rank of a data-parallel run (see
    :mod:`nerlstm.distributed`).
    """
    listener = listener or TrainingListener()
    writes = shard is None or shard.writes
    if writes:
        remove_stale_temporaries(model_path)
    run = start_run(train_sentences, config, model_path=model_path, device=device,
                    data_summary=data_summary, resume=resume, vectors=vectors,
                    more_tokens=more_tokens)
    if shard is not None:
        run.shard, run.replica = shard, shard.replicate(run.objective)
        run.progress.order = None  # drawn again: the same at every rank
    encoder = run.tagger.encoder
    listener.vocabularies(len(encoder.words), len(encoder.chars), encoder.tags.symbols,
                          run.config.train_scheme)
    dev_contexts = (context_ids([s.document for s in dev_sentences])
                    if run.config.doc_context and dev_sentences else None)
    result = TrainingResult(best_epoch=run.progress.best_epoch, best_dev=run.progress.best_dev)
    started = time.perf_counter()
    epochs_run = run.progress.epoch - 1
    with open(metrics_log_path(model_path) if writes else os.devnull,
              "a" if resume is not None else "w", encoding="utf-8") as log, \
            (contextlib.nullcontext(stop) if stop is not None else stop_requests()) as caught:
        if shard is not None:
            caught = shard.agreed(caught)
        while run.progress.epoch <= run.config.epochs:
            epoch_started = time.perf_counter()
            seen_before = run.progress.seen  # a resumed epoch was partly trained before
            train_seconds = train_epoch(run, listener, caught, governor)
            if caught:
                save_checkpoint(run)
                result.stopped_by_signal = caught[0]
                break
            if shard is not None and dev_sentences:
                dev = shard.from_first(lambda: score_dev(run, dev_sentences, dev_contexts))
            else:
                dev = score_dev(run, dev_sentences, dev_contexts) if dev_sentences else None
            row = end_epoch(run, dev, seen_before, train_seconds, epoch_started)
            epochs_run = row["epoch"]
            save_checkpoint(run)
            result.rows.append(row)
            log.write(json.dumps(row) + "\n")
            log.flush()
            listener.epoch_done(row)
            if caught:
                result.stopped_by_signal = caught[0]
                break
            if dev_sentences and run.progress.since_best >= run.config.patience:
                break
    result.best_epoch, result.best_dev = run.progress.best_epoch, run.progress.best_dev
    result.epochs_run = epochs_run
    result.seconds = time.perf_counter() - started
    if result.best_epoch is not None and writes:
        update_summary(model_path, {"epochs_run": epochs_run})
    if result.stopped_by_signal is None and writes:
        with contextlib.suppress(FileNotFoundError):  # finished: nothing left to resume
            os.unlink(checkpoint_path(model_path))
    return result


class TrainingData:
    """The training sentences, as training draws its batches from them and builds them."""

    def __init__(self, sentences: Sequence[Sentence], encoder: Encoder, config: Config,
                 device: torch.device | str) -> None:
        self.encoder, self.config, self.device = encoder, config, device
        self.tokens = [s.tokens for s in sentences]
        self.tags = [schemes.convert(s.tags, config.train_scheme) for s in sentences]
        self.contexts = (context_ids([s.document for s in sentences]) if config.doc_context
                         else None)
        _, _, self.word_counts = build_vocabs(self.tokens, lowercase_words=config.lowercase_words)
        self.rare = rare_word_mask(self.word_counts, encoder.words,
                                   config.unk_max_count).to(device)
        if config.mention_replacement > 0:
            self.entities = [schemes.spans(tags) for tags in self.tags]
            # Every mention as it occurs, so that frequent names are drawn more often.
            self.mentions: dict[str, list[tuple[str, ...]]] = {}
            for tokens, entities in zip(self.tokens, self.entities):
                for kind, start, end in entities:
                    self.mentions.setdefault(kind, []).append(tuple(tokens[start:end]))

    def epoch_order(self, rng: random.Random) -> list[list[int]]:
        """One epoch's batches of sentence indices: whole contexts, or similar lengths."""
        if self.contexts is not None:
            return list(context_batches(self.contexts, self.config.batch_size, rng))
        lengths = [len(tokens) for tokens in self.tokens]
        return list(batch_indices(lengths, self.config.batch_size, rng))

    def batch(self, indices: list[int], rng: random.Random) -> Batch:
        """The batch of ``indices`` with training's noise: some sentences read without their
        document (context dropout), rare words replaced by UNK at times."""
        config, contexts = self.config, self.contexts
        if contexts is not None and config.context_dropout > 0:
            # So that the model also tags a sentence without its document well, as `tag`
            # reads a line (negative ids are contexts of their own).
            contexts = dict(zip(indices, (
                -1 - index if rng.random() < config.context_dropout else contexts[index]
                for index in indices)))
        tokens, tags = self.tokens, self.tags
        if config.mention_replacement > 0:
            tokens, tags = self.replaced_mentions(indices, contexts, rng)
        batch = self.encoder.batch(tokens, indices, tags, contexts).to(self.device)
        if config.word_unk_prob > 0 or config.word_dropout > 0:
            batch.words_as_read = batch.word_ids
            drop = torch.zeros_like(batch.mask)
            if config.word_unk_prob > 0:
                drop = self.rare[batch.word_ids] & (
                    torch.rand(batch.word_ids.shape, device=self.device) < config.word_unk_prob)
            if config.word_dropout > 0:
                drop |= batch.mask & (torch.rand(batch.word_ids.shape, device=self.device)
                                      < config.word_dropout)
            batch.word_ids = batch.word_ids.masked_fill(drop, 1)
        return batch

    def replaced_mentions(self, indices: list[int], contexts: Sequence[int] | dict | None,
                          rng: random.Random) -> tuple[dict, dict]:
        """The tokens and tags of the sentences at ``indices``, each entity mention replaced
        by a random mention of its type with probability ``mention_replacement``. A mention
        repeated in its context is replaced alike, so that the document still names one
        entity one way."""
        chosen: dict[tuple, tuple[str, ...]] = {}
        tokens: dict[int, list[str]] = {}
        tags: dict[int, list[str]] = {}
        for index in indices:
            sentence, entities = self.tokens[index], self.entities[index]
            tokens[index], tags[index] = sentence, self.tags[index]
            if not entities:
                continue
            context = contexts[index] if contexts is not None else -1 - index
            written: list[str] = []
            written_spans: list[schemes.Span] = []
            cursor = 0
            for kind, start, end in entities:
                written.extend(sentence[cursor:start])
                mention = tuple(sentence[start:end])
                key = (context, kind, mention)
                if key not in chosen:
                    chosen[key] = (rng.choice(self.mentions[kind])
                                   if rng.random() < self.config.mention_replacement
                                   else mention)
                written_spans.append(schemes.Span(kind, len(written),
                                                  len(written) + len(chosen[key])))
                written.extend(chosen[key])
                cursor = end
            written.extend(sentence[cursor:])
            tokens[index] = written
            tags[index] = schemes.tags_from_spans(written_spans, len(written),
                                                  self.config.train_scheme)
        return tokens, tags


def optimization_step(model: TrainingObjective, optimizer: torch.optim.Optimizer, batch: Batch,
                      sentences: int, clip: float) -> float:
    """One update on the batch's loss per sentence; returns the batch's summed loss."""
    loss = model.loss(batch)
    optimizer.zero_grad()
    (loss / sentences).backward()
    if clip > 0:
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
    optimizer.step()
    return loss.item()


def rare_word_mask(word_counts: Counter, words: Vocab, max_count: int = 1) -> torch.Tensor:
    """True for the ids of words seen at most ``max_count`` times in training: those are
    replaced by UNK at times."""
    rare = torch.zeros(len(words), dtype=torch.bool)
    for word, count in word_counts.items():
        if count <= max_count:
            rare[words.get(word)] = True
    return rare


def resume_from(path: str) -> dict:
    """A checkpoint written by :func:`train`, loaded without running code."""
    return read_checked(path, CHECKPOINT_FORMAT, ("model", "optimizer", "progress",
                                                  "python_rng", "torch_rng"))


def check_same_data(checkpoint: dict, data_summary: dict, path: str) -> None:
    """Refuse to go on from a checkpoint on other data (``data_summary``: the data the run is
    given now) than the run was started on."""
    for split in ("train", "dev"):
        before, now = checkpoint.get("data", {}).get(split), data_summary.get(split)
        counts = [(d or {}).get(key) for d in (before, now) for key in ("sentences", "tokens")]
        if counts[:2] != counts[2:]:
            raise NerlstmError(f"the checkpoint was made with other {split} data "
                               f"({counts[0]} sentences, {counts[1]} tokens; now {counts[2]}, "
                               f"{counts[3]})", path=path)


def vectors_for_run(path: str, train: Sequence[Sentence],
                    more_tokens: Sequence[Sequence[str]]) -> tuple[Vectors, dict]:
    """The vectors in ``path`` of every word of the training data and ``more_tokens``, and
    how much of the training data they cover (see :func:`embedding_coverage`), with the
    seconds it took to read them."""
    started = time.perf_counter()
    words = {token for s in train for token in s.tokens}
    words.update(token for tokens in more_tokens for token in tokens)
    vectors = read_vectors(path, wanted_keys(words))
    coverage = embedding_coverage(train, vectors)
    coverage["seconds"] = time.perf_counter() - started
    return vectors, coverage


def make_optimizer(model: torch.nn.Module, config: Config) -> torch.optim.Optimizer:
    parameters = [parameter for parameter in model.parameters() if parameter.requires_grad]
    if config.optimizer == "sgd":
        # fused: momentum and update in one pass over each parameter, with the same numbers
        return torch.optim.SGD(parameters, lr=config.lr, momentum=config.momentum, fused=True)
    if config.optimizer == "adam":
        return torch.optim.Adam(parameters, lr=config.lr)
    raise NerlstmError(f"unknown optimizer '{config.optimizer}': expected sgd or adam",
                       exit_code=2)


def check_writable(path: str) -> None:
    """Refuse, before any training, a model path that cannot be written."""
    if os.path.isdir(path):
        raise NerlstmError("is a directory, expected a model file name", path=path, exit_code=1)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise NerlstmError(f"folder {folder} does not exist", path=path)
    if not os.access(folder, os.W_OK):
        raise NerlstmError(f"folder {folder} is not writable", path=path)
