"""Training a tagger: epochs, dev scoring, early stopping, best model kept on disk."""

from __future__ import annotations

import json
import os
import random
import signal
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch

from nerlstm import schemes
from nerlstm.batching import Encoder, batch_indices
from nerlstm.config import Config
from nerlstm.conll import Sentence
from nerlstm.errors import NerlstmError
from nerlstm.evaluation import micro_scores
from nerlstm.model import BiLstmCrf
from nerlstm.modelfile import save_model
from nerlstm.tagging import Tagger
from nerlstm.vocab import TagVocab, build_vocabs


class TrainingListener:
    """Receives progress; the CLI renders it. Every method does nothing by default."""

    def epoch_started(self, epoch: int, sentences: int) -> None: ...

    def batch_done(self, sentences: int, loss: float) -> None: ...

    def epoch_done(self, row: dict) -> None: ...


@dataclass
class TrainingResult:
    """What a run did: per-epoch rows, the best epoch, and how it ended."""

    rows: list[dict] = field(default_factory=list)
    best_epoch: int | None = None
    best_dev: dict | None = None
    seconds: float = 0.0
    stopped_by_signal: int | None = None  # the signal number that interrupted training


def metrics_log_path(model_path: str) -> str:
    return model_path + ".metrics.jsonl"


def build_tagger(train: Sequence[Sentence], config: Config, device: torch.device | str
                 ) -> Tagger:
    """A new, untrained tagger whose vocabularies come from the training sentences."""
    words, chars, _ = build_vocabs((s.tokens for s in train),
                                   lowercase_words=config.lowercase_words)
    types = sorted({span.type for s in train for span in schemes.spans(s.tags)})
    tags = TagVocab(schemes.tag_set(types, config.train_scheme))
    model = BiLstmCrf(config, len(words), len(chars), len(tags)).to(device)
    return Tagger(model, Encoder(words, chars, tags), config.train_scheme, device)


@contextmanager
def stop_requests() -> Iterator[list[int]]:
    """Turn SIGINT and SIGTERM into a request to stop after the current batch.

    Yields a list that receives the number of each signal caught. A second Ctrl-C while
    stopping interrupts at once.
    """
    caught: list[int] = []
    handled = (signal.SIGINT, signal.SIGTERM)
    try:
        previous = {number: signal.getsignal(number) for number in handled}
    except ValueError:  # not in the main thread: signals cannot be handled here
        yield caught
        return

    def request_stop(number: int, frame: object) -> None:
        if caught and number == signal.SIGINT:
            raise KeyboardInterrupt
        caught.append(number)

    try:
        for number in handled:
            signal.signal(number, request_stop)
    except ValueError:
        yield caught
        return
    try:
        yield caught
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def train(train_sentences: Sequence[Sentence], dev_sentences: Sequence[Sentence] | None,
          config: Config, *, model_path: str, device: torch.device | str = "cpu",
          data_summary: dict | None = None, listener: TrainingListener | None = None
          ) -> TrainingResult:
    """Train a tagger and keep the best model at ``model_path``.

    With dev sentences, the model is saved whenever dev F1 improves, and training stops after
    ``config.patience`` epochs without improvement; without them, after every epoch (the last
    one is kept). A metrics log, one JSON object per epoch, is written beside the model.
    """
    listener = listener or TrainingListener()
    torch.manual_seed(config.seed)
    rng = random.Random(config.seed)
    tagger = build_tagger(train_sentences, config, device)
    model, encoder = tagger.model, tagger.encoder

    tokens = [s.tokens for s in train_sentences]
    tags = [schemes.convert(s.tags, config.train_scheme) for s in train_sentences]
    lengths = [len(t) for t in tokens]
    _, _, word_counts = build_vocabs(tokens, lowercase_words=config.lowercase_words)
    singleton = torch.zeros(len(encoder.words), dtype=torch.bool)
    for word, count in word_counts.items():
        if count == 1:
            singleton[encoder.words.get(word)] = True
    singleton = singleton.to(device)

    optimizer = make_optimizer(model, config)
    log_path = metrics_log_path(model_path)
    result = TrainingResult()
    best_f1 = -1.0
    since_best = 0
    started = time.perf_counter()
    with open(log_path, "w", encoding="utf-8") as log, stop_requests() as caught:
        for epoch in range(1, config.epochs + 1):
            for group in optimizer.param_groups:
                group["lr"] = config.lr / (1 + config.lr_decay * (epoch - 1))
            epoch_started = time.perf_counter()
            listener.epoch_started(epoch, len(tokens))
            model.train()
            total_loss, seen = 0.0, 0
            for indices in batch_indices(lengths, config.batch_size, rng):
                batch = encoder.batch(tokens, indices, tags).to(device)
                if config.word_unk_prob > 0:
                    drop = singleton[batch.word_ids] & (
                        torch.rand(batch.word_ids.shape, device=device) < config.word_unk_prob)
                    batch.word_ids = batch.word_ids.masked_fill(drop, 1)
                loss = model.loss(batch)
                optimizer.zero_grad()
                (loss / len(indices)).backward()
                if config.clip > 0:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), config.clip)
                optimizer.step()
                total_loss += loss.item()
                seen += len(indices)
                listener.batch_done(len(indices), loss.item() / len(indices))
                if caught:
                    break
            if caught:
                result.stopped_by_signal = caught[0]
                break
            row = {"epoch": epoch, "loss": total_loss / seen,
                   "lr": optimizer.param_groups[0]["lr"],
                   "train_seconds": time.perf_counter() - epoch_started,
                   "sentences_per_second": seen / (time.perf_counter() - epoch_started)}
            if dev_sentences:
                predicted = tagger.predict([s.tokens for s in dev_sentences])
                dev = micro_scores([s.tags for s in dev_sentences], predicted)
                row.update({f"dev_{name}": value for name, value in dev.items()})
                improved = dev["f1"] > best_f1
            else:
                dev, improved = None, True
            row["seconds"] = time.perf_counter() - epoch_started
            row["best"] = improved
            if improved:
                best_f1 = dev["f1"] if dev else best_f1
                result.best_epoch, result.best_dev = epoch, dev
                since_best = 0
                summary = {**(data_summary or {}), "best_epoch": epoch, "best_dev": dev,
                           "epochs_run": epoch}
                save_model(tagger, model_path, summary)
            else:
                since_best += 1
            result.rows.append(row)
            log.write(json.dumps(row) + "\n")
            log.flush()
            listener.epoch_done(row)
            if caught:
                result.stopped_by_signal = caught[0]
                break
            if dev_sentences and since_best >= config.patience:
                break
    result.seconds = time.perf_counter() - started
    return result


def make_optimizer(model: torch.nn.Module, config: Config) -> torch.optim.Optimizer:
    if config.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum)
    if config.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=config.lr)
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
