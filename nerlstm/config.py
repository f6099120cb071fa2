"""Every setting of a run, each declared once with its type, default, range and help.

:class:`Config` holds the model and its training (it is saved in the model file);
:class:`DataSettings` holds what a training run reads and where it runs (the model file keeps
it in its summary, so that ``nerlstm info --recipe`` repeats the run). The comments say why
each default is what it is; docs/results.md has the measurements behind them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from nerlstm.errors import NerlstmError
from nerlstm.settings import Setting, declared, setting, suggestion
from nerlstm.settings import to_toml as _to_toml


@dataclass
class Config:
    # Model
    word_dim: int = setting(  # Lample et al. 2016 and NCRF++ use 100
        100, "Word embedding size (with --embeddings: the file's).", "model", minimum=1)
    lowercase_words: bool = setting(  # case is also seen by the character encoder
        False, "Lowercase the word table (case stays in the characters).", "model",
        off_flag="--cased-words")
    embeddings: str = setting(
        "", "Pretrained word vectors: GloVe or word2vec text, word2vec binary, each may be "
        ".gz.", "model", metavar="FILE")
    freeze_embeddings: bool = setting(False, "Keep the pretrained vectors fixed.", "model")
    char_encoder: str = setting(  # the CNN (Ma & Hovy) is the more accurate on CoNLL-2003
        "cnn", "Character encoder: lstm (a BiLSTM) or cnn (a convolution, max-pooled).",
        "model", choices=("lstm", "cnn"))
    char_cnn_tanh: bool = setting(  # unbounded features swamped the word embeddings
        True, "Pass the character CNN's max-pooled features through tanh (unbounded ones "
        "outweigh the word embeddings).", "model", off_flag="--char-cnn-unbounded")
    char_cnn_width: int = setting(  # Ma & Hovy 2016 and Chiu & Nichols 2016 use 3
        3, "Characters each filter of the character CNN spans (odd, so that it centres).",
        "model", minimum=1)
    char_dim: int = setting(30, "Character embedding size.", "model", minimum=1)
    char_hidden: int = setting(
        50, "Character BiLSTM size per direction (the CNN has twice as many filters).",
        "model", minimum=1)
    char_projection: int = setting(  # more filters without a wider word BiLSTM input
        0, "Project the character features linearly to this size before the word BiLSTM "
        "(more filters at the same BiLSTM cost); 0: no projection.", "model", minimum=0)
    char_dropout: float = setting(  # Ma & Hovy 2016 drop half of the character embeddings
        0.0, "Dropout on the character embeddings, before the character encoder.", "model",
        minimum=0.0, below=1.0)
    hidden: int = setting(  # more accurate than 200 on CoNLL-2003, as fast per token
        256, "Word BiLSTM size per direction.", "model", minimum=1)
    layers: int = setting(1, "Word BiLSTM layers.", "model", minimum=1)
    doc_context: bool = setting(  # names are often written out in full once per document
        True, "Let each token see its word's other mentions in the document (-DOCSTART- to "
        "-DOCSTART-, in pieces of at most 32 sentences), or read each sentence alone.",
        "model", off_flag="--sentence-context")
    doc_summary: bool = setting(  # a results table's rows are teams, a market report's firms
        True, "With document context: let each token also see the mean state of its whole "
        "context (what kind of document it is in).", "model", off_flag="--no-doc-summary")
    context_dropout: float = setting(  # so that a line tagged alone is tagged well too
        0.25, "With document context: share of training sentences read alone, so that "
        "single sentences are tagged well too.", "model", minimum=0.0, maximum=1.0)
    dropout: float = setting(  # Lample et al. 2016
        0.5, "Dropout on the BiLSTM's input and output.", "model", minimum=0.0, below=1.0)
    locked_dropout: bool = setting(  # Gal & Ghahramani's variational dropout, as an option
        False, "Drop the same BiLSTM input and output features at every token of a sentence "
        "(variational dropout), or draw a mask per token.", "model", off_flag="--token-dropout")
    word_unk_prob: float = setting(  # Lample et al. 2016: the UNK vector learns rare words
        0.5, "Probability of replacing a rare training word (see --unk-max-count) by UNK.",
        "model", minimum=0.0, maximum=1.0)
    unk_max_count: int = setting(
        1, "Words seen at most this many times in training are the rare ones that "
        "--word-unk-prob replaces by UNK (1: singletons).", "model", minimum=1)
    word_dropout: float = setting(
        0.0, "Probability of replacing any training word by UNK (besides the rare ones), so "
        "that more words are learnt from their characters.", "model", minimum=0.0, below=1.0)
    mention_replacement: float = setting(  # Dai & Adel 2020: names typed by their context
        0.0, "Probability of replacing a training entity mention by another of its type from "
        "the training data, the same way throughout its document in the epoch.", "model",
        minimum=0.0, maximum=1.0)
    tokenizer: str = setting(  # kept in the model: tagging cuts text as training data was
        "default", "How tag cuts raw text into tokens, kept in the model: default (words and "
        "punctuation, as CoNLL-2003 is tokenized), whitespace, or chars (each character, for "
        "languages written without spaces).", "model", choices=("default", "whitespace", "chars"))
    # Training
    epochs: int = setting(50, "Most epochs to train.", "training", minimum=1)
    patience: int = setting(  # shorter patience stopped some runs before their best epoch
        16, "Stop after this many epochs without a better dev F1.", "training", minimum=1)
    batch_size: int = setting(16, "Sentences per batch.", "training", minimum=1,
                              flags=("--batch-size", "-b"))
    optimizer: str = setting("sgd", "sgd (with momentum) or adam.", "training",
                             choices=("sgd", "adam"))
    lr: float = setting(0.02, "Learning rate.", "training", minimum=0.0)
    momentum: float = setting(0.9, "SGD momentum.", "training", minimum=0.0, maximum=1.0)
    lr_schedule: str = setting(
        "inverse", "Learning rate by epoch: inverse, lr / (1 + decay * epoch) (Ma & Hovy "
        "2016); cosine, from lr down to 0 at the last epoch (Loshchilov & Hutter 2017); or "
        "cyclic, inverse on average but falling within each epoch from 1.9 to 0.1 times it "
        "(Izmailov et al. 2018, with --average-from).",
        "training", choices=("inverse", "cosine", "cyclic"))
    lr_decay: float = setting(  # as in Ma & Hovy 2016
        0.05, "With the inverse and cyclic schedules: lr / (1 + decay * epoch).", "training",
        minimum=0.0)
    clip: float = setting(5.0, "Gradient norm clipping; 0 turns it off.", "training",
                          minimum=0.0)
    average_decay: float = setting(
        0.0, "Score on dev and save a moving average of the weights, with this decay per "
        "batch (e.g. 0.999); 0 turns it off.", "training", minimum=0.0, below=1.0)
    average_from: int = setting(
        0, "From this epoch on, score on dev and save the mean of the weights at the ends of "
        "the epochs so far (stochastic weight averaging); 0 turns it off.", "training",
        minimum=0)
    lm_weight: float = setting(
        0.0, "Weight of a language-modelling loss beside the tagging loss: the word BiLSTM's "
        "forward states learn to predict the next word, its backward states the previous "
        "one (Rei 2017); tagging does not change. 0 turns it off.", "training", minimum=0.0)
    seed: int = setting(1, "Random seed.", "training")
    train_scheme: str = setting(  # BIOES gives the CRF explicit entity ends
        "bioes", "Tag scheme the model learns.", "training", choices=("bioes", "iob2"))

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> Config:
        """A config from saved values; keys it does not know (other settings) are ignored."""
        known = {field.name for field in fields(cls)}
        return cls(**{key: value for key, value in values.items() if key in known})

    @classmethod
    def from_saved(cls, values: dict) -> Config:
        """The config of a model file or checkpoint: a setting the file does not hold came
        later, and the file was trained as if it were off (see ``BEFORE_THE_SETTING``)."""
        return cls.from_dict({**BEFORE_THE_SETTING, **values})

    def checked(self) -> Config:
        """This config, after every value is checked against its setting's type and range;
        raises NerlstmError naming the first bad one."""
        for name, described in declared(Config).items():
            setattr(self, name, described.check(getattr(self, name)))
        if self.average_decay > 0 and self.average_from > 0:
            raise NerlstmError("average_decay and average_from: expected one kind of weight "
                               "averaging, not both", exit_code=2)
        if self.char_cnn_width % 2 == 0:
            raise NerlstmError(f"char_cnn_width = {self.char_cnn_width}: expected an odd "
                               "number (a filter centred on each character)", exit_code=2)
        # Without document context there is no document to sum up.
        self.doc_summary = self.doc_summary and self.doc_context
        return self


@dataclass
class DataSettings:
    """What a training run reads, and where it runs."""

    train: str | None = setting(None, "Training data: a CoNLL column file, a JSONL span file "
                                "or hf:NAME[:SPLIT].", "data", metavar="FILE")
    dev: str | None = setting(None, "Dev data: picks the best epoch and stops early.", "data",
                              flags=("--dev", "-d"), metavar="FILE")
    vocab_from: list[str] = setting(
        [], "With --embeddings: more data files whose words with a vector join the "
        "vocabulary (train and dev always do).", "data", metavar="FILE")
    token_column: int = setting(0, "0-based column of the token; negative counts from the end.",
                                "data")
    tag_column: int = setting(-1, "0-based column of the tag; negative counts from the end.",
                              "data")
    encoding: str = setting("utf-8", "Encoding of the input files.", "data", metavar="NAME")
    scheme: str = setting("auto", "Tag scheme of the input; auto detects it.", "data",
                          choices=("auto", "iob1", "iob2", "bioes"))
    data_format: str = setting(
        "auto", "Format of the data files: conll (columns), jsonl (a text and its entity "
        "spans a line), or auto: jsonl for .jsonl and .json files and files whose first line "
        "starts with {, else conll; hf:NAME[:SPLIT] is a Hugging Face dataset.", "data",
        choices=("auto", "conll", "jsonl"))
    # snap: annotators often take a space or leave off a suffix ("Paris'"); the type is
    # right and the tokens it touches are the entity the model can learn
    misaligned: str = setting(
        "snap", "JSONL spans that do not start and end with tokens: snap (widen to the tokens "
        "they touch), drop, or error.", "data", choices=("snap", "drop", "error"))
    hf_tokens: str = setting("tokens", "Hugging Face datasets: the column of tokens.", "data",
                             metavar="COLUMN")
    hf_tags: str = setting("ner_tags", "Hugging Face datasets: the column of tags (tag "
                           "strings, or ids with ClassLabel names).", "data", metavar="COLUMN")
    hf_document: str = setting(
        "document", "Hugging Face datasets: the column whose value changes where a document "
        "starts, if the dataset has it (else -DOCSTART- rows start documents).", "data",
        metavar="COLUMN")
    label_map: str = setting(
        "", "Rename, merge or drop entity types as data is read: a file of from=to lines, or "
        "from=to,from=to (e.g. person=PER,group=ORG); =O drops a type.", "data",
        metavar="FILE|MAP")
    threads: int | None = setting(None, "CPU threads (default: the cores that are free).",
                                  "run", minimum=1)
    device: str = setting("auto", "Where to compute: auto (a GPU if there is one), cpu or "
                          "cuda.", "run", choices=("auto", "cpu", "cuda"))

    @classmethod
    def from_dict(cls, values: dict) -> DataSettings:
        known = {field.name for field in fields(cls)}
        return cls(**{key: value for key, value in values.items() if key in known})


def all_settings() -> dict[str, Setting]:
    """Every setting a recipe may hold, model and training first."""
    return {**declared(Config), **declared(DataSettings)}


def check_settings(values: dict, path: str | None = None) -> dict:
    """Recipe values checked against their settings: unknown names (with a suggestion),
    types, ranges and choices. Returns the values, numbers converted where TOML is loose."""
    known = all_settings()
    checked = {}
    for key, value in values.items():
        if key not in known:
            raise NerlstmError(f"unknown setting {key}{suggestion(key, known)}; "
                               f"`nerlstm train --print-config` lists them all", path=path,
                               exit_code=2)
        try:
            checked[key] = known[key].check(value)
        except NerlstmError as error:
            raise NerlstmError(error.message, path=path, exit_code=2) from None
    return checked


def settings_toml(values: dict) -> str:
    """Settings as a TOML recipe, grouped, each with its help as a comment."""
    return _to_toml(values, all_settings())


# What a model file written before a setting existed was trained with: the setting off.
BEFORE_THE_SETTING = {"doc_context": False, "context_dropout": 0.0, "char_encoder": "lstm",
                      "char_cnn_tanh": False, "word_dropout": 0.0, "average_from": 0,
                      "lm_weight": 0.0, "char_dropout": 0.0, "lr_schedule": "inverse",
                      "unk_max_count": 1, "doc_summary": False, "char_projection": 0}
