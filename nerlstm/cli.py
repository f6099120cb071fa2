"""The command line: options in, rendering out; the work happens in the library modules.

torch is imported inside the commands, so that ``--help`` and usage errors answer at once.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable, Iterator
from enum import Enum
from pathlib import Path
from typing import TextIO

import typer
from rich.console import Console
from rich.table import Table

from nerlstm.config import Config
from nerlstm.errors import NerlstmError
from nerlstm.textio import PAUSE

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=None,
                  help="Named-entity recognition with a character+word BiLSTM-CRF.")
err = Console(stderr=True, highlight=False, soft_wrap=True)


class SchemeChoice(str, Enum):
    auto = "auto"
    iob1 = "iob1"
    iob2 = "iob2"
    bioes = "bioes"


class TrainScheme(str, Enum):
    bioes = "bioes"
    iob2 = "iob2"


class CharEncoderChoice(str, Enum):
    lstm = "lstm"
    cnn = "cnn"


class OptimizerChoice(str, Enum):
    sgd = "sgd"
    adam = "adam"


class PrecisionChoice(str, Enum):
    float32 = "float32"
    bfloat16 = "bfloat16"


Precision = typer.Option(PrecisionChoice.float32, "--precision", help="Arithmetic of the word BiLSTM: float32, or bfloat16 (1.1-1.5x faster tagging on CPUs with bfloat16 instructions; 2 of 46,435 CoNLL-2003 test tags changed).")


class DeviceChoice(str, Enum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


def reports_errors(command: Callable) -> Callable:
    """Turn user errors into one ``error:`` line and their exit code, Ctrl-C into 130."""

    @functools.wraps(command)
    def run(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except NerlstmError as error:
            err.print(f"error: {error}", markup=False, soft_wrap=True)
            raise typer.Exit(error.exit_code) from None
        except KeyboardInterrupt:  # Ctrl-C: stop quietly, as pipeline tools do
            raise typer.Exit(130) from None
        except BrokenPipeError:
            # The reader went away (`| head`): stop quietly, and keep Python from
            # complaining about the pipe while it flushes stdout at exit.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise typer.Exit(0) from None

    return run


# Options shared by the commands that read column files.
TokenColumn = typer.Option(0, "--token-column", help="0-based column of the token; negative counts from the end.")
TagColumn = typer.Option(-1, "--tag-column", help="0-based column of the tag; negative counts from the end.")
Encoding = typer.Option("utf-8", "--encoding", help="Encoding of the input files.")
Scheme = typer.Option(SchemeChoice.auto, "--scheme", help="Tag scheme of the input; auto detects it.")
ModelPath = typer.Option(..., "--model", "-m", help="Model file.")


def _read_tagged(path: Path, token_column: int, tag_column: int, encoding: str,
                 scheme: SchemeChoice):
    from nerlstm.conll import read_tagged

    return read_tagged(str(path), token_column=token_column, tag_column=tag_column,
                       encoding=encoding, scheme=scheme.value)


def _choose_device(device: DeviceChoice) -> str:
    import torch

    if device == DeviceChoice.cuda and not torch.cuda.is_available():
        raise NerlstmError("--device cuda: no CUDA GPU is available here (use --device cpu)",
                           exit_code=2)
    if device == DeviceChoice.auto:
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device.value


def _set_threads(threads: int | None) -> None:
    import torch

    if threads:
        torch.set_num_threads(threads)


def _load_tagger(model: Path, device_name: str, threads: int | None,
                 precision: PrecisionChoice = PrecisionChoice.float32):
    """The model file's tagger and payload, set up to tag on ``threads`` CPU threads in
    ``precision``."""
    import torch

    from nerlstm.modelfile import load_model
    from nerlstm.tagging import tag_on_cpu_threads, use_precision

    _set_threads(threads)
    tagger, payload = load_model(str(model), device_name)
    if device_name == "cpu":
        tag_on_cpu_threads(tagger, torch.get_num_threads())
    use_precision(tagger, precision.value)
    return tagger, payload


def _describe_data(name: str, data) -> None:
    counts = ", ".join(f"{kind} {count:,}" for kind, count in sorted(data.entity_counts.items()))
    err.print(f"{name}: {data.path}: {len(data.sentences):,} sentences, {data.tokens:,} tokens, "
              f"scheme {data.scheme}; entities: {counts or 'none'}", markup=False)


@app.command("train")
@reports_errors
def train_command(
    ctx: typer.Context,
    train_file: Path | None = typer.Argument(None, metavar="TRAIN_FILE", help="Training data, a CoNLL column file."),
    dev: Path | None = typer.Option(None, "--dev", "-d", help="Dev data: picks the best epoch and stops early."),
    model: Path | None = typer.Option(None, "--model", "-m", help="Where to write the model."),
    recipe: Path | None = typer.Option(None, "--config", "-c", help="A TOML recipe of train options; options given here override it."),
    print_config: bool = typer.Option(False, "--print-config", help="Print the effective options as a TOML recipe and stop."),
    epochs: int = typer.Option(Config.epochs, "--epochs", min=1, help="Most epochs to train."),
    patience: int = typer.Option(Config.patience, "--patience", min=1, help="Stop after this many epochs without a better dev F1."),
    batch_size: int = typer.Option(Config.batch_size, "--batch-size", "-b", min=1, help="Sentences per batch."),
    optimizer: OptimizerChoice = typer.Option(OptimizerChoice(Config.optimizer), "--optimizer", help="sgd (with momentum) or adam."),
    lr: float = typer.Option(Config.lr, "--lr", min=0.0, help="Learning rate."),
    lr_decay: float = typer.Option(Config.lr_decay, "--lr-decay", min=0.0, help="lr / (1 + decay * epoch)."),
    momentum: float = typer.Option(Config.momentum, "--momentum", min=0.0, max=1.0, help="SGD momentum."),
    clip: float = typer.Option(Config.clip, "--clip", min=0.0, help="Gradient norm clipping; 0 turns it off."),
    average_decay: float = typer.Option(Config.average_decay, "--average-decay", min=0.0, max=0.99999, help="Score on dev and save a moving average of the weights, with this decay per batch (e.g. 0.999); 0 turns it off."),
    dropout: float = typer.Option(Config.dropout, "--dropout", min=0.0, max=0.99, help="Dropout on the BiLSTM's input and output."),
    locked_dropout: bool = typer.Option(Config.locked_dropout, "--locked-dropout/--token-dropout", help="Drop the same BiLSTM input and output features at every token of a sentence (variational dropout), or draw a mask per token."),
    word_unk_prob: float = typer.Option(Config.word_unk_prob, "--word-unk-prob", min=0.0, max=1.0, help="Probability of replacing a singleton training word by UNK."),
    word_dim: int = typer.Option(Config.word_dim, "--word-dim", min=1, help="Word embedding size (with --embeddings: the file's)."),
    embeddings: str = typer.Option(Config.embeddings, "--embeddings", help="Pretrained word vectors: GloVe or word2vec text, word2vec binary, each may be .gz."),
    freeze_embeddings: bool = typer.Option(Config.freeze_embeddings, "--freeze-embeddings", help="Keep the pretrained vectors fixed."),
    vocab_from: list[Path] = typer.Option([], "--vocab-from", help="With --embeddings: more CoNLL files whose words with a vector join the vocabulary (train and dev always do)."),
    lowercase_words: bool = typer.Option(Config.lowercase_words, "--lowercase-words/--cased-words", help="Lowercase the word table (case stays in the characters)."),
    char_encoder: CharEncoderChoice = typer.Option(CharEncoderChoice(Config.char_encoder), "--char-encoder", help="Character encoder: lstm (a BiLSTM) or cnn (a convolution, max-pooled)."),
    char_cnn_tanh: bool = typer.Option(Config.char_cnn_tanh, "--char-cnn-tanh/--char-cnn-unbounded", help="Pass the character CNN's max-pooled features through tanh (unbounded ones outweigh the word embeddings)."),
    char_dim: int = typer.Option(Config.char_dim, "--char-dim", min=1, help="Character embedding size."),
    char_hidden: int = typer.Option(Config.char_hidden, "--char-hidden", min=1, help="Character BiLSTM size per direction (the CNN has twice as many filters)."),
    hidden: int = typer.Option(Config.hidden, "--hidden", min=1, help="Word BiLSTM size per direction."),
    layers: int = typer.Option(Config.layers, "--layers", min=1, help="Word BiLSTM layers."),
    context_dropout: float = typer.Option(Config.context_dropout, "--context-dropout", min=0.0, max=1.0, help="With document context: share of training sentences read alone, so that single sentences are tagged well too."),
    doc_context: bool = typer.Option(Config.doc_context, "--doc-context/--sentence-context", help="Let each token see its word's other mentions in the document (-DOCSTART- to -DOCSTART-, in pieces of at most 32 sentences), or read each sentence alone."),
    train_scheme: TrainScheme = typer.Option(TrainScheme(Config.train_scheme), "--train-scheme", help="Tag scheme the model learns."),
    seed: int = typer.Option(Config.seed, "--seed", help="Random seed."),
    threads: int | None = typer.Option(None, "--threads", min=1, help="CPU threads (default: torch's choice)."),
    device: DeviceChoice = typer.Option(DeviceChoice.auto, "--device", help="auto, cpu or cuda."),
    plot: Path | None = typer.Option(None, "--plot", help="Draw the learning curves to this PNG at the end (needs matplotlib)."),
    resume: Path | None = typer.Option(None, "--resume", help="Go on from the checkpoint an interrupted run left (MODEL.ckpt); its config is used."),
    token_column: int = TokenColumn,
    tag_column: int = TagColumn,
    encoding: str = Encoding,
    scheme: SchemeChoice = Scheme,
) -> None:
    """Train a tagger on TRAIN_FILE and keep the best-on-dev model.

    Example: nerlstm train train.txt --dev dev.txt -m model.pt
    """
    from nerlstm.recipe import RECIPE_KEYS, load_recipe, to_toml

    options = _effective_options(ctx, load_recipe(str(recipe)) if recipe else {}, RECIPE_KEYS)
    if print_config:
        sys.stdout.write(to_toml(options))
        return
    if train_file is None or model is None:
        raise NerlstmError("train needs TRAIN_FILE and -m MODEL (see nerlstm train --help)",
                           exit_code=2)
    config = Config.from_dict(options)
    token_column, tag_column = options["token_column"], options["tag_column"]
    encoding, threads = options["encoding"], options["threads"]
    scheme, device = SchemeChoice(options["scheme"]), DeviceChoice(options["device"])

    from nerlstm.signals import stop_requests

    # From here on a signal asks the run to stop; reading the data and the vectors can take
    # a while, and a signal then ends the command with its message, not the default action.
    with stop_requests() as caught:
        from nerlstm.training import check_writable, load_checkpoint, metrics_log_path, train

        check_writable(str(model))
        device_name = _choose_device(device)
        _set_threads(threads)
        checkpoint = load_checkpoint(str(resume)) if resume else None
        train_data = _read_tagged(train_file, token_column, tag_column, encoding, scheme)
        dev_data = _read_tagged(dev, token_column, tag_column, encoding, scheme) if dev else None
        _describe_data("train", train_data)
        if dev_data:
            _describe_data("dev", dev_data)
        summary = {"train": train_data.describe(), "dev": dev_data.describe() if dev_data else None}
        vectors, more_tokens = None, []
        if config.embeddings and checkpoint is None:
            vectors, more_tokens = _load_vectors(config, train_data, dev_data, vocab_from,
                                                 token_column, tag_column, encoding)
        if checkpoint is not None:
            _check_same_data(checkpoint, summary, str(resume))
            config = Config.from_dict(checkpoint["model"]["config"])
            err.print(f"resuming from {resume} at epoch {checkpoint['progress']['epoch']}",
                      markup=False)
        err.print("config: " + json.dumps(config.to_dict()), markup=False, soft_wrap=True)
        if caught:
            err.print("interrupted before training began: nothing was written", markup=False)
            raise typer.Exit(128 + caught[0])
        listener = _EpochPrinter(has_dev=dev_data is not None)
        result = train(train_data.sentences, dev_data.sentences if dev_data else None, config,
                       model_path=str(model), device=device_name, data_summary=summary,
                       listener=listener, resume=checkpoint, vectors=vectors,
                       more_tokens=more_tokens, stop=caught)
        listener.close()
        if result.best_epoch is None:
            err.print("stopped before the first epoch ended: no model written", markup=False)
        else:
            _print_summary(result, str(model), resumed=checkpoint is not None)
            if plot:
                from nerlstm.plotting import plot_curves, read_metrics_log

                plot_curves(read_metrics_log(metrics_log_path(str(model))), str(plot), str(train_file))
                err.print(f"learning curves: {plot}", markup=False)
        if result.stopped_by_signal is not None:
            err.print(f"interrupted: the best model so far is kept; go on with --resume "
                      f"{model}.ckpt", markup=False)
            raise typer.Exit(128 + result.stopped_by_signal)


def _load_vectors(config, train_data, dev_data, vocab_from, token_column, tag_column, encoding):
    """Read the vectors of every word of the data files, and report their coverage."""
    import time

    from nerlstm.conll import read_conll
    from nerlstm.embeddings import read_vectors, wanted_keys
    from nerlstm.training import embedding_coverage

    more_tokens = [s.tokens for s in dev_data.sentences] if dev_data else []
    for path in vocab_from:
        more_tokens += [s.tokens for s in read_conll(str(path), encoding=encoding,
                                                     token_column=token_column, tag_column=None)]
    words = {token for s in train_data.sentences for token in s.tokens}
    words.update(token for tokens in more_tokens for token in tokens)
    started = time.perf_counter()
    vectors = read_vectors(config.embeddings, wanted_keys(words))
    coverage = embedding_coverage(train_data.sentences, vectors)
    duplicates = f", {coverage['duplicates']:,} duplicate words ignored" if coverage["duplicates"] else ""
    err.print(f"embeddings: {config.embeddings}: {coverage['words_in_file']:,} words x "
              f"{coverage['dim']} dimensions{duplicates}, read in "
              f"{time.perf_counter() - started:.1f} s; they cover {coverage['tokens'] * 100:.1f}% "
              f"of training tokens and {coverage['types'] * 100:.1f}% of word types", markup=False)
    return vectors, more_tokens


def _effective_options(ctx: typer.Context, recipe: dict, keys: tuple[str, ...]) -> dict:
    """Each option from the command line if given there, else from the recipe, else its
    default."""
    options = {}
    for key in keys:
        value = ctx.params[key]
        source = ctx.get_parameter_source(key)  # click's ParameterSource, by name: typer
        if getattr(source, "name", "") != "COMMANDLINE" and key in recipe:  # may vendor click
            value = recipe[key]
        options[key] = value.value if isinstance(value, Enum) else value
    return options


def _print_summary(result, model: str, resumed: bool) -> None:
    from nerlstm.plotting import read_metrics_log, sparkline
    from nerlstm.training import metrics_log_path

    minutes, seconds = divmod(round(result.seconds), 60)
    if result.best_dev:
        best = result.best_dev
        # the log also holds the epochs trained before a resume
        rows = read_metrics_log(metrics_log_path(model)) if resumed else result.rows
        f1s = [row["dev_f1"] for row in rows]
        err.print(f"best epoch {result.best_epoch} of {rows[-1]['epoch']}: dev precision "
                  f"{best['precision']:.4f}, recall {best['recall']:.4f}, F1 {best['f1']:.4f}; "
                  f"dev F1 by epoch {sparkline(f1s)} ({min(f1s):.3f}..{max(f1s):.3f})",
                  markup=False)
    else:
        err.print(f"trained {result.best_epoch} epochs", markup=False)
    err.print(f"model: {model}; metrics: {metrics_log_path(model)}; time {minutes} min "
              f"{seconds} s{' since resuming' if resumed else ''}", markup=False)


def _check_same_data(checkpoint: dict, summary: dict, path: str) -> None:
    """Refuse to resume on other data than the run was started with."""
    for split in ("train", "dev"):
        before, now = checkpoint.get("data", {}).get(split), summary.get(split)
        counts = [(d or {}).get(key) for d in (before, now) for key in ("sentences", "tokens")]
        if counts[:2] != counts[2:]:
            raise NerlstmError(f"the checkpoint was made with other {split} data "
                               f"({counts[0]} sentences, {counts[1]} tokens; now {counts[2]}, "
                               f"{counts[3]})", path=path)


class _EpochPrinter:
    """A progress bar during each epoch (on a terminal only), and a row after it.

    Implements training.TrainingListener (not subclassed: that module imports torch).
    """

    def __init__(self, has_dev: bool) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        self.has_dev = has_dev
        self.progress = None
        if err.is_terminal:
            self.progress = Progress(TextColumn("epoch {task.fields[epoch]}"), BarColumn(),
                                     MofNCompleteColumn(), TextColumn("loss {task.fields[loss]:.3f}"),
                                     TextColumn("{task.fields[rate]:.0f} sent/s"),
                                     console=err, transient=True)
            self.progress.start()
        self.task = None
        self.header_printed = False

    def vocabularies(self, words: int, chars: int, tags: list[str], scheme: str) -> None:
        err.print(f"vocabulary: {words:,} words, {chars:,} characters (padding and unknown "
                  f"included), {len(tags)} tags in {scheme.upper()}: {' '.join(tags)}",
                  markup=False)

    def epoch_started(self, epoch: int, sentences: int) -> None:
        import time

        self.started = time.perf_counter()
        self.done = 0
        if self.progress is not None:
            if self.task is not None:
                self.progress.remove_task(self.task)
            self.task = self.progress.add_task("", total=sentences, epoch=epoch, loss=0.0, rate=0.0)

    def batch_done(self, sentences: int, loss: float) -> None:
        import time

        self.done += sentences
        if self.progress is not None:
            rate = self.done / max(time.perf_counter() - self.started, 1e-9)
            self.progress.update(self.task, advance=sentences, loss=loss, rate=rate)

    def epoch_done(self, row: dict) -> None:
        if not self.header_printed:
            dev = f"{'dev P':>7} {'dev R':>7} {'dev F1':>7} " if self.has_dev else ""
            err.print(f"{'epoch':>5} {'loss':>9} {dev}{'sent/s':>7} {'seconds':>7}", markup=False)
            self.header_printed = True
        dev = (f"{row['dev_precision']:7.4f} {row['dev_recall']:7.4f} {row['dev_f1']:7.4f} "
               if self.has_dev else "")
        mark = "  * best" if row["best"] and self.has_dev else ""
        err.print(f"{row['epoch']:5d} {row['loss']:9.4f} {dev}{row['sentences_per_second']:7.0f} "
                  f"{row['seconds']:7.1f}{mark}", markup=False)

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()


@app.command("eval")
@reports_errors
def eval_command(
    data_file: Path = typer.Argument(..., metavar="DATA_FILE", help="Tagged data to score, a CoNLL column file."),
    model: Path = ModelPath,
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of a table."),
    strict: bool = typer.Option(False, "--strict", help="seqeval's strict mode (IOB2 chunks must be well formed)."),
    predictions: Path | None = typer.Option(None, "--predictions", "-p", help="Write token, gold tag and predicted tag per line (conlleval input)."),
    errors: bool = typer.Option(False, "--errors", "-e", help="Also break the errors down: kinds, type confusions, frequent wrong spans, token accuracy, seen versus unseen entities."),
    train_file: Path | None = typer.Option(None, "--train", help="Training data for seen/unseen scores with --errors (default: the file the model was trained on, if it is there)."),
    alone: bool = typer.Option(False, "--sentences-alone", help="Read each sentence by itself, as tag reads a line of text, not with its document."),
    batch_size: int = typer.Option(256, "--batch-size", "-b", min=1, help="Sentences per batch."),
    threads: int | None = typer.Option(None, "--threads", min=1, help="CPU threads."),
    device: DeviceChoice = typer.Option(DeviceChoice.cpu, "--device", help="auto, cpu or cuda."),
    precision: PrecisionChoice = Precision,
    token_column: int = TokenColumn,
    tag_column: int = TagColumn,
    encoding: str = Encoding,
    scheme: SchemeChoice = Scheme,
) -> None:
    """Score a model on tagged data: entity-level precision, recall and F1, as conlleval.

    Example: nerlstm eval test.txt -m model.pt
    """
    from nerlstm.evaluation import evaluate

    device_name = _choose_device(device)
    data = _read_tagged(data_file, token_column, tag_column, encoding, scheme)
    tagger, payload = _load_tagger(model, device_name, threads, precision)
    scores, predicted = evaluate(tagger, data.sentences, strict=strict, batch_size=batch_size,
                                 alone=alone)
    if errors:
        scores["errors"] = _error_analysis(data, predicted, train_file, payload,
                                           token_column, tag_column, encoding)
    unknown = sorted({tag.split("-", 1)[-1] for s in data.sentences for tag in s.tags} -
                     {tag.split("-", 1)[-1] for tag in tagger.encoder.tags.symbols})
    if unknown:
        err.print(f"warning: {data_file}: entity types the model never saw (scored as misses): "
                  f"{', '.join(unknown)}", markup=False)
    if predictions:
        from nerlstm.evaluation import write_predictions

        write_predictions(str(predictions), data.sentences, predicted)
    if as_json:
        sys.stdout.write(json.dumps(scores) + "\n")
        return
    out = Console(highlight=False)
    out.print(f"{data_file}: {scores['sentences']:,} sentences, {scores['tokens']:,} tokens",
              markup=False, soft_wrap=True)
    out.print(_score_table(scores))
    if errors:
        for table in _error_tables(scores["errors"]):
            out.print(table)


def _error_analysis(data, predicted, train_file, payload, token_column, tag_column, encoding):
    from nerlstm.conll import read_tagged
    from nerlstm.evaluation import entity_texts, error_analysis

    if train_file is None:
        recorded = ((payload.get("summary") or {}).get("train") or {}).get("path")
        train_file = Path(recorded) if recorded and Path(recorded).is_file() else None
    seen = None
    if train_file is not None:
        seen = entity_texts(read_tagged(str(train_file), token_column=token_column,
                                        tag_column=tag_column, encoding=encoding).sentences)
    else:
        err.print("note: training data not found: no seen/unseen scores (give --train)",
                  markup=False)
    return error_analysis([s.tokens for s in data.sentences], [s.tags for s in data.sentences],
                          predicted, seen=seen)


def _error_tables(analysis: dict) -> list[Table]:
    kinds = Table(title=f"errors (token accuracy {analysis['token_accuracy'] * 100:.2f}%)")
    kinds.add_column("kind")
    kinds.add_column("count", justify="right")
    for kind, count in analysis["kinds"].items():
        kinds.add_row(kind.replace("_", " "), f"{count:,}")
    types = sorted(({t for row in analysis["confusion"].values() for t in row} |
                    set(analysis["confusion"])) - {"none"}) + ["none"]
    confusion = Table(title="gold type (rows) by predicted type (columns)")
    confusion.add_column("gold")
    for kind in types:
        confusion.add_column(kind, justify="right")
    for gold in types:
        row = analysis["confusion"].get(gold, {})
        confusion.add_row(gold, *(f"{row.get(kind, 0):,}" if not (gold == kind == "none")
                                  else "" for kind in types))
    frequent = Table(title="most frequent wrong spans")
    for column in ("span", "gold", "predicted", "kind", "count"):
        frequent.add_column(column, justify="right" if column == "count" else "left")
    for item in analysis["frequent"]:
        frequent.add_row(item["text"], item["gold"], item["predicted"],
                         item["kind"].replace("_", " "), str(item["count"]))
    tables = [kinds, confusion, frequent]
    if "seen" in analysis:
        generalisation = Table(title="entities seen in training versus new ones")
        for column in ("entities", "count", "precision", "recall", "F1"):
            generalisation.add_column(column, justify="left" if column == "entities" else "right")
        for name in ("seen", "unseen"):
            group = analysis[name]
            generalisation.add_row(name, f"{group['entities']:,}", f"{group['precision'] * 100:.2f}",
                                   f"{group['recall'] * 100:.2f}", f"{group['f1'] * 100:.2f}")
        tables.append(generalisation)
    return tables


def _score_table(scores: dict) -> Table:
    table = Table()
    for column in ("type", "precision", "recall", "F1", "support"):
        table.add_column(column, justify="left" if column == "type" else "right")
    for kind, row in scores["per_type"].items():
        table.add_row(kind, f"{row['precision'] * 100:.2f}", f"{row['recall'] * 100:.2f}",
                      f"{row['f1'] * 100:.2f}", f"{row['support']:,}")
    support = sum(row["support"] for row in scores["per_type"].values())
    table.add_section()
    table.add_row("micro", f"{scores['precision'] * 100:.2f}", f"{scores['recall'] * 100:.2f}",
                  f"{scores['f1'] * 100:.2f}", f"{support:,}")
    macro = scores["macro"]
    table.add_row("macro", f"{macro['precision'] * 100:.2f}", f"{macro['recall'] * 100:.2f}",
                  f"{macro['f1'] * 100:.2f}", f"{support:,}")
    return table


class InputKind(str, Enum):
    text = "text"
    tokens = "tokens"
    conll = "conll"


class OutputFormat(str, Enum):
    auto = "auto"
    inline = "inline"
    conll = "conll"
    jsonl = "jsonl"


@app.command("tag")
@reports_errors
def tag_command(
    files: list[Path] = typer.Argument(None, metavar="FILE", help="Files to tag; - or none for stdin."),
    model: Path = ModelPath,
    input_kind: InputKind = typer.Option(InputKind.text, "--input", "-i", help="text: raw text, one line at a time; tokens: whitespace-separated tokens; conll: a column file."),
    output_format: OutputFormat = typer.Option(OutputFormat.auto, "--format", "-f", help="inline: [TYPE entity] in the text; conll: token and tag per line; jsonl: one JSON object per line; auto: conll for --input conll, else inline."),
    min_score: float = typer.Option(0.0, "--min-score", min=0.0, max=1.0, help="Drop entities whose probability is below this."),
    batch_size: int = typer.Option(256, "--batch-size", "-b", min=1, help="Lines tagged together."),
    threads: int | None = typer.Option(None, "--threads", min=1, help="CPU threads."),
    device: DeviceChoice = typer.Option(DeviceChoice.cpu, "--device", help="auto, cpu or cuda."),
    precision: PrecisionChoice = Precision,
    token_column: int = typer.Option(0, "--token-column", help="With --input conll: 0-based column of the token."),
    paragraphs: bool = typer.Option(False, "--paragraphs", help="With text or tokens input: lines up to a blank line are one document, read together by a model trained with document context (--input conll uses -DOCSTART- lines)."),
    encoding: str = Encoding,
) -> None:
    """Tag text: one output line per input line, entities in brackets by default.

    Example: echo "Peter Blackburn visited Paris." | nerlstm tag -m model.pt
    """
    from nerlstm.tagging import (
        FORMATTERS,
        column_records,
        keep_confident,
        line_records,
        tag_records,
    )
    from nerlstm.textio import input_lines

    device_name = _choose_device(device)
    tagger, _ = _load_tagger(model, device_name, threads, precision)
    sources = [str(path) for path in files] if files else ["-"]
    out = sys.stdout
    lines = _flush_before_waiting(input_lines(sources, encoding), out)
    if input_kind == InputKind.conll:
        records = column_records(lines, token_column)
    else:
        records = line_records(lines, input_kind.value, paragraphs)
    chosen = output_format.value
    if chosen == "auto":
        chosen = "conll" if input_kind == InputKind.conll else "inline"
    render = FORMATTERS[chosen]
    scores = chosen == "jsonl" or min_score > 0
    interactive = out.isatty() or sys.stdin.isatty()
    for record, tagged in tag_records(tagger, records, batch_size=batch_size, scores=scores):
        if min_score > 0:
            tagged = keep_confident(tagged, min_score)
        out.write(render(record, tagged) + "\n")
        if interactive:
            out.flush()
    out.flush()


def _flush_before_waiting(lines: Iterator, out: TextIO) -> Iterator:
    """Pass the lines on; when the input pauses, flush the answers written before waiting.

    Resuming after a PAUSE means the tagger has written what it held, so a reader at the
    other end of a pipe (where stdout is block-buffered) gets its answers now.
    """
    for line in lines:
        yield line
        if line is PAUSE:
            out.flush()


@app.command("plot")
@reports_errors
def plot_command(
    metrics_log: Path = typer.Argument(..., metavar="METRICS_LOG", help="A run's MODEL.metrics.jsonl."),
    output: Path = typer.Option(..., "--output", "-o", help="The PNG to write."),
) -> None:
    """Draw a finished run's learning curves: loss and dev precision, recall, F1 per epoch.

    Example: nerlstm plot model.pt.metrics.jsonl -o curves.png
    """
    from nerlstm.plotting import plot_curves, read_metrics_log

    plot_curves(read_metrics_log(str(metrics_log)), str(output), str(metrics_log))
    err.print(f"learning curves: {output}", markup=False)


@app.command("info")
@reports_errors
def info_command(
    model: Path = ModelPath,
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    as_recipe: bool = typer.Option(False, "--recipe", help="Print the model's config as a TOML recipe for train --config."),
) -> None:
    """Show how a model was made and what it knows.

    Example: nerlstm info -m model.pt
    """
    from nerlstm.modelfile import describe

    facts = describe(str(model))
    if as_recipe:
        from nerlstm.recipe import to_toml

        sys.stdout.write(to_toml(facts["config"]))
        return
    if as_json:
        sys.stdout.write(json.dumps(facts) + "\n")
        return
    lines = [
        f"model: {facts['path']} ({facts['file_bytes'] / 2**20:.1f} MiB, format version "
        f"{facts['format_version']}, written by nerlstm {facts['nerlstm_version']} with torch "
        f"{facts['torch_version']})",
        f"entity types: {' '.join(facts['entity_types'])}; {len(facts['tags'])} tags in "
        f"{facts['train_scheme'].upper()}",
        f"vocabulary: {facts['words']:,} words, {facts['characters']:,} characters; "
        f"{facts['parameters']:,} parameters",
    ]
    for split in ("train", "dev"):
        data = facts[split]
        if data:
            counts = ", ".join(f"{kind} {count:,}" for kind, count in data["entities"].items())
            lines.append(f"{split}: {data['path']}: {data['sentences']:,} sentences, "
                         f"{data['tokens']:,} tokens, scheme {data['scheme']}; {counts}")
    best = facts["best_dev"]
    if best:
        lines.append(f"best epoch {facts['best_epoch']}: dev precision "
                     f"{best['precision']:.4f}, recall {best['recall']:.4f}, F1 {best['f1']:.4f}")
    lines.append("config: " + json.dumps(facts["config"]))
    sys.stdout.write("\n".join(lines) + "\n")


def main() -> None:
    app(prog_name="nerlstm")
