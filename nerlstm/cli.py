"""The command line: it parses options and renders results; the work is in :mod:`nerlstm.api`.

torch is imported inside the commands, so that ``--help`` and usage errors answer at once.
The train options come from the settings' definitions (:mod:`nerlstm.config`), as do the
recipe checks, so that an option and a recipe line take the same values.
"""

from __future__ import annotations

import functools
import inspect
import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal, Optional, TextIO

import typer
from rich.console import Console
from rich.table import Table
from typer.core import TyperArgument, TyperCommand

from nerlstm import __version__
from nerlstm.config import all_settings, settings_toml
from nerlstm.errors import NerlstmError
from nerlstm.settings import Setting
from nerlstm.textio import PAUSE

app = typer.Typer(no_args_is_help=True, rich_markup_mode=None,
                  help="Named-entity recognition with a character+word BiLSTM-CRF.")
err = Console(stderr=True, highlight=False, soft_wrap=True)


def _show_version(value: bool) -> None:
    if value:
        sys.stdout.write(f"nerlstm {__version__}\n")
        raise typer.Exit()


@app.callback()
def _main(version: bool = typer.Option(False, "--version", is_eager=True,
                                       callback=_show_version,
                                       help="Print the version and exit.")) -> None:
    """Named-entity recognition with a character+word BiLSTM-CRF."""


class Command(TyperCommand):
    """Usage lines in one style: ``NAME`` for a required argument, ``[NAME]`` for an
    optional one, ``...`` after one that repeats; the help names arguments without the
    Python type behind them."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for param in self.params:
            if isinstance(param, TyperArgument):
                param.display_type_rich = lambda ctx: None

    def collect_usage_pieces(self, ctx: typer.Context) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if isinstance(param, TyperArgument):
                name = param.metavar or param.name.upper()
                name = name if param.required else f"[{name}]"
                pieces.append(name + ("..." if param.nargs != 1 else ""))
        return pieces


def command(name: str) -> Callable:
    return app.command(name, cls=Command)


def reports_errors(function: Callable) -> Callable:
    """Turn user errors into one ``error:`` line and their exit code, Ctrl-C into 130."""

    @functools.wraps(function)
    def run(*args, **kwargs):
        try:
            return function(*args, **kwargs)
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


# Settings as options -------------------------------------------------------------------

METAVARS = {int: "N", float: "X", str: "TEXT", list: "FILE"}


def _annotation(setting: Setting) -> Any:
    if setting.kind is list:
        return list[str]
    # choices are checked by the setting, so that an option and a recipe say the same
    return Optional[setting.kind] if setting.optional else setting.kind  # noqa: UP045


def _checker(setting: Setting) -> Callable:
    def check(value: Any) -> Any:
        if value is None or setting.kind is list:
            return value
        try:
            return setting.check(value)
        except NerlstmError as error:
            raise typer.BadParameter(error.message.split(": ", 1)[-1]) from None

    return check


def setting_option(setting: Setting, help: str | None = None) -> Any:
    """The typer option of a setting: its flags, default, help, and its range checked."""
    names = list(setting.option_names)
    if setting.kind is bool and setting.off_flag:
        names[0] = f"{names[0]}/{setting.off_flag}"
    metavar = None
    if setting.kind is not bool:
        metavar = setting.metavar or ("|".join(setting.choices) if setting.choices
                                      else METAVARS[setting.kind])
    text = help or setting.help
    if setting.kind in (int, float) and (setting.minimum is not None or
                                         setting.maximum is not None or
                                         setting.below is not None):
        text = f"{text.rstrip('.')} ({setting.range_text()})."
    choices = list(setting.choices or ())
    return typer.Option(setting.default, *names, help=text, metavar=metavar,
                        callback=_checker(setting), show_default=setting.default not in
                        (None, "", []), autocompletion=(lambda: choices) if choices else None)


def with_settings(names: Sequence[str], helps: dict[str, str] | None = None) -> Callable:
    """Give a command an option for each named setting; it receives them as a dict in its
    ``settings`` argument."""
    known = all_settings()
    chosen = [known[name] for name in names]

    def decorate(function: Callable) -> Callable:
        signature = inspect.signature(function)
        kept = [p for p in signature.parameters.values() if p.name != "settings"]
        added = [inspect.Parameter(s.name, inspect.Parameter.KEYWORD_ONLY,
                                   default=setting_option(s, (helps or {}).get(s.name)),
                                   annotation=_annotation(s)) for s in chosen]

        @functools.wraps(function)
        def run(*args, **kwargs):
            settings = {s.name: kwargs.pop(s.name) for s in chosen}
            return function(*args, settings=settings, **kwargs)

        run.__signature__ = signature.replace(parameters=kept + added)
        run.__annotations__ = {**{key: value for key, value in function.__annotations__.items()
                                  if key != "settings"},
                               **{s.name: _annotation(s) for s in chosen}}
        return run

    return decorate


def effective_settings(ctx: typer.Context, recipe: dict) -> dict:
    """Each setting from the command line if given there, else from the recipe, else its
    default."""
    values = {}
    for name, setting in all_settings().items():
        value = ctx.params.get(name, setting.default)
        source = ctx.get_parameter_source(name) if name in ctx.params else None
        if getattr(source, "name", "") != "COMMANDLINE" and name in recipe:
            value = recipe[name]
        if isinstance(value, Path):
            value = str(value)
        if setting.kind is list:
            value = [str(item) for item in value]
        values[name] = value
    return values


READING = ("token_column", "tag_column", "encoding", "scheme", "data_format", "misaligned",
           "hf_tokens", "hf_tags", "hf_document", "label_map")
RUNNING = ("threads", "device")
MODEL_TRAINING = tuple(name for name, s in all_settings().items()
                       if s.group in ("model", "training"))

ModelPath = typer.Option(..., "--model", "-m", metavar="FILE", help="Model file.")
Precision = typer.Option(
    "float32", "--precision", metavar="float32|bfloat16",
    help="Arithmetic of the word BiLSTM: float32, or bfloat16 (faster on CPUs with bfloat16 "
    "instructions; a few tags may change).")
TagBatchSize = typer.Option(256, "--batch-size", "-b", min=1, metavar="N",
                            help="Sentences tagged together (an integer of at least 1).")


def _describe_data(name: str, data) -> None:
    _print_warnings(data)
    counts = ", ".join(f"{kind} {count:,}" for kind, count in sorted(data.entity_counts.items()))
    err.print(f"{name}: {data.path}: {len(data.sentences):,} sentences, {data.tokens:,} tokens, "
              f"scheme {data.scheme}; entities: {counts or 'none'}", markup=False)


def _print_warnings(data) -> None:
    for warning in data.warnings:
        err.print(f"warning: {warning}", markup=False, soft_wrap=True)


# train -----------------------------------------------------------------------------------

@command("train")
@reports_errors
@with_settings(("dev",) + MODEL_TRAINING + ("vocab_from",) + READING + RUNNING)
def train_command(
    ctx: typer.Context,
    train: Optional[Path] = typer.Argument(  # noqa: UP045
        None, metavar="TRAIN_FILE", show_default=False,
        help="Training data: a CoNLL column file, a JSONL span file or hf:NAME[:SPLIT] (or "
        "`train` in the recipe)."),
    model: Optional[Path] = typer.Option(  # noqa: UP045
        None, "--model", "-m", metavar="FILE", help="Where to write the model."),
    recipe: Optional[Path] = typer.Option(  # noqa: UP045
        None, "--config", "-c", metavar="FILE",
        help="A TOML recipe of settings; options given here override it."),
    print_config: bool = typer.Option(False, "--print-config",
                                      help="Print the effective settings as a TOML recipe "
                                      "and stop."),
    plot: Optional[Path] = typer.Option(  # noqa: UP045
        None, "--plot", metavar="FILE",
        help="Draw the learning curves to this PNG at the end (needs matplotlib)."),
    resume: Optional[Path] = typer.Option(  # noqa: UP045
        None, "--resume", metavar="FILE",
        help="Go on from the checkpoint an interrupted run left (MODEL.ckpt); its config is "
        "used."),
    settings: dict | None = None,
) -> None:
    """Train a tagger on TRAIN_FILE and keep the best-on-dev model.

    Example: nerlstm train train.txt --dev dev.txt -m model.pt
    """
    from nerlstm.config import Config, DataSettings
    from nerlstm.recipe import load_recipe

    values = effective_settings(ctx, load_recipe(str(recipe)) if recipe else {})
    if print_config:
        sys.stdout.write(settings_toml(values))
        return
    data = DataSettings.from_dict(values)
    if data.train is None or model is None:
        raise NerlstmError("train needs TRAIN_FILE and -m MODEL (see nerlstm train --help)",
                           exit_code=2)
    if plot:
        from nerlstm.plotting import require_matplotlib

        require_matplotlib()
    # One rank of `torchrun --nproc-per-node N -m nerlstm train ...`: rank 0 alone reports.
    several = int(os.environ.get("WORLD_SIZE", "1")) > 1
    if several:
        from nerlstm.distributed import stop_requests
    else:
        from nerlstm.signals import stop_requests

    # From here on a signal asks the run to stop; reading the data and the vectors can take
    # a while, and a signal then ends the command with its message, not the default action.
    with stop_requests() as caught:
        from nerlstm import api

        quiet = several and os.environ.get("RANK") != "0"
        listener = _QuietListener() if quiet else _EpochPrinter()
        try:
            reading = {name: getattr(data, name) for name in READING}
            result = api.train(data.train, model, dev=data.dev, config=Config.from_dict(values),
                               vocab_from=data.vocab_from, threads=data.threads,
                               device=data.device, resume=resume, listener=listener,
                               stop=caught, **reading)
        finally:
            listener.close()
        if quiet:
            raise typer.Exit(128 + result.stopped_by_signal if result.stopped_by_signal else 0)
        if not listener.started and result.stopped_by_signal is not None:
            err.print("interrupted before training began: nothing was written", markup=False)
            raise typer.Exit(128 + result.stopped_by_signal)
        if result.best_epoch is None:
            err.print("stopped before the first epoch ended: no model written", markup=False)
        else:
            _print_summary(result, str(model), resumed=resume is not None)
            if plot:
                from nerlstm.plotting import plot_curves, read_metrics_log
                from nerlstm.training import metrics_log_path

                plot_curves(read_metrics_log(metrics_log_path(str(model))), str(plot),
                            str(data.train))
                err.print(f"learning curves: {plot}", markup=False)
        if result.stopped_by_signal is not None:
            err.print(f"interrupted: the best model so far is kept; go on with --resume "
                      f"{model}.ckpt", markup=False)
            raise typer.Exit(128 + result.stopped_by_signal)


class _QuietListener:
    """The listener of ranks other than 0 in a data-parallel run: they report nothing."""

    def __getattr__(self, name: str) -> Callable:
        return lambda *args, **kwargs: None


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


class _EpochPrinter:
    """A progress bar during each epoch (on a terminal only), and a row after it.

    Implements training.TrainingListener (not subclassed: that module imports torch) and
    prints what the run reads.
    """

    def __init__(self) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        self.has_dev = False
        self.started = False  # training began (the vocabularies are built)
        self.progress = None
        if err.is_terminal:
            self.progress = Progress(TextColumn("epoch {task.fields[epoch]}"), BarColumn(),
                                     MofNCompleteColumn(), TextColumn("loss {task.fields[loss]:.3f}"),
                                     TextColumn("{task.fields[rate]:.0f} sent/s"),
                                     console=err, transient=True)
            self.progress.start()
        self.task = None
        self.header_printed = False

    def data_read(self, split: str, data) -> None:
        self.has_dev = self.has_dev or split == "dev"
        _describe_data(split, data)

    def vectors_read(self, path: str, coverage: dict) -> None:
        duplicates = (f", {coverage['duplicates']:,} duplicate words ignored"
                      if coverage["duplicates"] else "")
        err.print(f"embeddings: {path}: {coverage['words_in_file']:,} words x "
                  f"{coverage['dim']} dimensions{duplicates}, read in "
                  f"{coverage['seconds']:.1f} s; they cover {coverage['tokens'] * 100:.1f}% "
                  f"of training tokens and {coverage['types'] * 100:.1f}% of word types",
                  markup=False)

    def resumed(self, path: str, epoch: int) -> None:
        err.print(f"resuming from {path} at epoch {epoch}", markup=False)

    def config_chosen(self, config) -> None:
        err.print("config: " + json.dumps(config.to_dict()), markup=False, soft_wrap=True)

    def vocabularies(self, words: int, chars: int, tags: list[str], scheme: str) -> None:
        self.started = True
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


# eval ------------------------------------------------------------------------------------

@command("eval")
@reports_errors
@with_settings(READING + RUNNING)
def eval_command(
    data_file: Path = typer.Argument(..., metavar="DATA_FILE", show_default=False,
                                     help="Tagged data to score: a CoNLL column file, a JSONL "
                                     "span file or hf:NAME[:SPLIT]."),
    model: Path = ModelPath,
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of a "
                                 "table."),
    strict: bool = typer.Option(False, "--strict", help="seqeval's strict mode (IOB2 chunks "
                                "must be well formed)."),
    predictions: Optional[Path] = typer.Option(  # noqa: UP045
        None, "--predictions", "-p", metavar="FILE",
        help="Write token, gold tag and predicted tag per line (conlleval input); - for "
        "stdout, and the scores then go to stderr."),
    errors: bool = typer.Option(False, "--errors", "-e", help="Also break the errors down: "
                                "kinds, type confusions, frequent wrong spans, token "
                                "accuracy, seen versus unseen entities."),
    train_file: Optional[Path] = typer.Option(  # noqa: UP045
        None, "--train", metavar="FILE",
        help="Training data for seen/unseen scores with --errors (default: the file the "
        "model was trained on, if it is there)."),
    alone: bool = typer.Option(False, "--sentences-alone", help="Read each sentence by "
                               "itself, as tag reads a line of text, not with its document."),
    batch_size: int = TagBatchSize,
    precision: Literal["float32", "bfloat16"] = Precision,
    settings: dict | None = None,
) -> None:
    """Score a model on tagged data: entity-level precision, recall and F1, as conlleval.

    Example: nerlstm eval test.txt -m model.pt
    """
    from nerlstm import api

    result = api.evaluate(data_file, model, strict=strict, batch_size=batch_size, alone=alone,
                          errors=errors, train=train_file, precision=precision, **settings)
    scores = result.scores
    _print_warnings(result.data)
    for note in result.notes:
        err.print(f"note: {note}", markup=False)
    if result.unseen_types:
        err.print(f"warning: {data_file}: entity types the model never saw (scored as "
                  f"misses): {', '.join(result.unseen_types)}", markup=False)
    if result.absent_types:
        err.print(f"warning: {data_file}: entity types the model knows that the data never "
                  f"holds (each one predicted is a false positive; see --label-map): "
                  f"{', '.join(result.absent_types)}", markup=False)
    err.print(f"{data_file}: {scores['sentences']:,} sentences, {scores['tokens']:,} tokens",
              markup=False, soft_wrap=True)
    if predictions:
        from nerlstm.evaluation import write_predictions

        write_predictions(str(predictions), result.data.sentences, result.predicted)
    to_stdout = str(predictions) != "-"
    if as_json:
        (sys.stdout if to_stdout else sys.stderr).write(json.dumps(scores) + "\n")
        return
    out = Console(highlight=False) if to_stdout else err
    out.print(_score_table(scores))
    if errors:
        for table in _error_tables(scores["errors"]):
            out.print(table)


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
    table = Table(title="entity-level scores (%)")
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


# tag -------------------------------------------------------------------------------------

@command("tag")
@reports_errors
@with_settings(("encoding", "token_column", "hf_tokens", "hf_document") + RUNNING,
               helps={"token_column": "With --input conll: 0-based column of the token; "
                                      "negative counts from the end."})
def tag_command(
    files: Optional[list[Path]] = typer.Argument(  # noqa: UP045
        None, metavar="FILE", show_default=False,
        help="Files to tag; - or none for stdin; hf:NAME[:SPLIT] tags a Hugging Face "
        "dataset's tokens."),
    model: Path = ModelPath,
    input_kind: Literal["text", "tokens", "conll", "jsonl"] = typer.Option(
        "text", "--input", "-i", metavar="text|tokens|conll|jsonl",
        help="text: raw text, one line at a time; tokens: whitespace-separated tokens; "
        "conll: a column file; jsonl: a JSON object with a \"text\" a line (its "
        "\"tokens\" and document id are used; its entities are not)."),
    output_format: Literal["auto", "inline", "conll", "jsonl"] = typer.Option(
        "auto", "--format", "-f", metavar="auto|inline|conll|jsonl",
        help="inline: [TYPE entity] in the text; conll: token and tag per line; jsonl: one "
        "JSON object per line; auto: conll for --input conll, else inline."),
    min_score: float = typer.Option(0.0, "--min-score", min=0.0, max=1.0, metavar="X",
                                    help="Drop entities whose probability is below this (a "
                                    "number from 0 to 1)."),
    batch_size: int = TagBatchSize,
    precision: Literal["float32", "bfloat16"] = Precision,
    lines_alone: bool = typer.Option(False, "--lines", help="With text or tokens input: read "
                                     "each line alone, not with the lines up to a blank line "
                                     "as one document, and a line of text as one sentence."),
    paragraphs: bool = typer.Option(False, "--paragraphs", hidden=True,
                                    help="Documents up to a blank line: now the default."),
    workers: int = typer.Option(1, "--workers", min=1, metavar="N",
                                help="Tag on N processes on the CPU, each loading the model "
                                "and using one thread; the input is cut between documents, "
                                "the output keeps its order (an integer of at least 1)."),
    settings: dict | None = None,
) -> None:
    """Tag text: one output line per input line, entities in brackets by default.

    Text is read by documents: the lines up to a blank line are one document, each line cut
    into sentences, as eval reads a column file by its -DOCSTART- lines.

    Example: echo "Peter Blackburn visited Paris." | nerlstm tag -m model.pt
    """
    from nerlstm.api import load_tagger
    from nerlstm.parallel import Output, tag_in_processes
    from nerlstm.records import input_records, tag_records
    from nerlstm.textio import input_lines

    if workers > 1 and settings["device"] not in ("auto", "cpu"):
        raise NerlstmError(f"--workers runs on the CPU; use one process for --device "
                           f"{settings['device']}", exit_code=2)
    tagger, _ = load_tagger(model, device="cpu" if workers > 1 else settings["device"],
                            threads=1 if workers > 1 else settings["threads"],
                            precision=precision)
    sources = [str(path) for path in files] if files else ["-"]
    out = sys.stdout
    datasets = [source for source in sources if source.startswith("hf:")]
    if datasets:
        # a dataset's tokens, read as a column file's: the tags, if any, are not read
        from nerlstm.hfdata import read_hf
        from nerlstm.records import sentence_records

        if len(sources) > 1:
            raise NerlstmError("tag reads one hf: dataset at a time, without other files",
                               exit_code=2)
        records = sentence_records(read_hf(sources[0], tokens=settings["hf_tokens"], tags=None,
                                           document=settings["hf_document"]))
    else:
        lines = _flush_before_waiting(input_lines(sources, settings["encoding"]), out)
        records = input_records(lines, input_kind, token_column=settings["token_column"],
                                lines_alone=lines_alone,
                                tokenizer=tagger.model.config.tokenizer)
    chosen = output_format
    if chosen == "auto":
        chosen = "conll" if input_kind == "conll" or datasets else "inline"
    render = Output(chosen, min_score, column_input=input_kind == "conll")
    interactive = out.isatty() or sys.stdin.isatty()
    if workers > 1:
        tag_in_processes(records, out, model=str(model), workers=workers, output=render,
                         batch_size=batch_size, precision=precision, flush_each=interactive)
        out.flush()
        return
    for record, tagged in tag_records(tagger, records, batch_size=batch_size,
                                      scores=render.scores):
        text = render(record, tagged)
        if text is None:
            continue
        out.write(text + "\n")
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


# convert ---------------------------------------------------------------------------------

@command("convert")
@reports_errors
@with_settings(READING + ("tokenizer",),
               helps={"tokenizer": "How JSONL texts without tokens are cut: default, "
                                   "whitespace or chars (use the model's)."})
def convert_command(
    source: str = typer.Argument(..., metavar="IN", show_default=False,
                                 help="Tagged data: a CoNLL column file, a JSONL span file, "
                                 "hf:NAME[:SPLIT], or - for stdin."),
    output: str = typer.Option(..., "--output", "-o", metavar="OUT",
                               help="The file to write; - for stdout."),
    to: Literal["auto", "conll", "jsonl"] = typer.Option(
        "auto", "--to", "-t", metavar="auto|conll|jsonl",
        help="Format to write; auto: by OUT's extension (.jsonl, .json; .txt, .conll), else "
        "the other format than IN's."),
    tags: Literal["iob2", "iob1", "bioes"] = typer.Option(
        "iob2", "--tags", metavar="iob2|iob1|bioes",
        help="Tag scheme of CoNLL output (spans have none)."),
    settings: dict | None = None,
) -> None:
    """Convert tagged data between CoNLL columns and JSONL spans, keeping documents.

    CoNLL output has two columns, token and tag; JSONL output a line per sentence with its
    text (the tokens joined by spaces), entities, tokens and document.

    Example: nerlstm convert train.txt -o train.jsonl
    """
    from nerlstm import api

    data = api.convert(source, output, to=to, tags=tags, **settings)
    _print_warnings(data)
    documents = len({sentence.document for sentence in data.sentences})
    where = "stdout" if output == "-" else output
    err.print(f"{data.path}: {len(data.sentences):,} sentences, {documents:,} documents, "
              f"{sum(data.entity_counts.values()):,} entities -> {where}", markup=False)


# plot and info ---------------------------------------------------------------------------

@command("plot")
@reports_errors
def plot_command(
    metrics_log: Path = typer.Argument(..., metavar="METRICS_LOG", show_default=False,
                                       help="A run's MODEL.metrics.jsonl."),
    output: Path = typer.Option(..., "--output", "-o", metavar="FILE",
                                help="The PNG to write."),
) -> None:
    """Draw a finished run's learning curves: loss and dev precision, recall, F1 per epoch.

    Example: nerlstm plot model.pt.metrics.jsonl -o curves.png
    """
    from nerlstm.plotting import plot_curves, read_metrics_log, require_matplotlib

    require_matplotlib()
    plot_curves(read_metrics_log(str(metrics_log)), str(output), str(metrics_log))
    err.print(f"learning curves: {output}", markup=False)


@command("info")
@reports_errors
def info_command(
    model: Path = ModelPath,
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    as_recipe: bool = typer.Option(False, "--recipe", help="Print the settings the model was "
                                   "trained with as a TOML recipe for train --config."),
) -> None:
    """Show how a model (.pt or .onnx) was made and what it knows.

    Example: nerlstm info -m model.pt
    """
    from nerlstm.modelfile import describe, recipe_of

    facts = describe(str(model))
    if as_recipe:
        sys.stdout.write(settings_toml(recipe_of(facts)))
        return
    if as_json:
        sys.stdout.write(json.dumps(facts) + "\n")
        return
    made = (f"format version {facts['format_version']}, written by nerlstm "
            f"{facts['nerlstm_version']} with torch {facts['torch_version']}")
    if facts["format"] == "onnx":
        made = (f"ONNX, {'int8 weights' if facts['quantized'] else 'float32'}, exported from "
                f"{facts['exported_from']} by nerlstm {facts['nerlstm_version']} with torch "
                f"{facts['torch_version']}")
    lines = [
        f"model: {facts['path']} ({facts['file_bytes'] / 2**20:.1f} MiB, {made})",
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
        lines.append(f"best epoch {facts['best_epoch']} of {facts['epochs_run']}: dev "
                     f"precision {best['precision']:.4f}, recall {best['recall']:.4f}, F1 "
                     f"{best['f1']:.4f}")
    lines.append("config: " + json.dumps(facts["config"]))
    sys.stdout.write("\n".join(lines) + "\n")


# export and serve --------------------------------------------------------------------------

@command("export")
@reports_errors
def export_command(
    model: Path = ModelPath,
    output: Path = typer.Option(..., "--output", "-o", metavar="FILE",
                                help="The .onnx file to write."),
    quantize: Optional[Literal["int8"]] = typer.Option(  # noqa: UP045
        None, "--quantize", "-q", metavar="int8",
        help="int8: onnxruntime's dynamic quantization of the weights (faster; a few tags "
        "may change)."),
) -> None:
    """Write a model as one ONNX file that tags without torch (onnxruntime and numpy):
    the network up to the tag scores as the graph, all else as plain JSON metadata.

    Example: nerlstm export -m model.pt -o model.onnx
    """
    from nerlstm.onnx_export import export

    if not str(output).lower().endswith(".onnx"):
        raise NerlstmError(f"--output {output}: expected a file name ending in .onnx (tag, "
                           f"eval and serve know an ONNX model by it)", exit_code=2)
    export(str(model), str(output), quantize=quantize)
    err.print(f"{model} -> {output} ({os.path.getsize(output) / 2**20:.1f} MiB"
              f"{', int8' if quantize else ''})", markup=False)


@command("serve")
@reports_errors
def serve_command(
    model: Path = ModelPath,
    host: str = typer.Option("127.0.0.1", "--host", metavar="HOST",
                             help="Address to listen on (0.0.0.0: every interface)."),
    port: int = typer.Option(8000, "--port", "-p", min=0, max=65535, metavar="N",
                             help="Port to listen on (0: a free one, printed)."),
    threads: Optional[int] = typer.Option(  # noqa: UP045
        None, "--threads", min=1, metavar="N",
        help="CPU threads for the model (default: the cores other processes leave free)."),
    max_body: int = typer.Option(1 << 20, "--max-body", min=1, metavar="BYTES",
                                 help="Largest request body; larger ones answer 413."),
    max_texts: int = typer.Option(256, "--max-texts", min=1, metavar="N",
                                  help="Most texts in one request; more answer 422."),
) -> None:
    """Serve a model (.pt or .onnx) over HTTP: POST /tag {"text": ...} or {"texts": [...]}
    answers what the Python API returns, as JSON; GET /health; GET /info.

    Example: nerlstm serve -m model.onnx --port 8000
    """
    from nerlstm.server import bind, require_server, serve

    require_server()
    sock = bind(host, port)
    from nerlstm import api

    tagger = api.load(model, threads=threads)
    where = sock.getsockname()
    err.print(f"serving {model} on http://{where[0]}:{where[1]} (Ctrl-C or SIGTERM stops)",
              markup=False)
    serve(tagger, sock, model_path=str(model), max_body=max_body, max_texts=max_texts)


def main() -> None:
    app(prog_name="nerlstm")
