"""Every hyperparameter of a model and its training, with the reason for each default."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields


@dataclass
class Config:
    # Model
    word_dim: int = 100            # Lample et al. 2016 and NCRF++ use 100
    lowercase_words: bool = False  # case is also seen by the character encoder
    embeddings: str = ""           # pretrained vectors file the word table started from
    freeze_embeddings: bool = False  # keep pretrained vectors fixed while training
    char_encoder: str = "cnn"      # cnn (Ma & Hovy): CoNLL-2003 +1.1 F1 over lstm (Lample et al.)
    char_cnn_tanh: bool = True     # bound the CNN's features (unbounded ones swamped the words)
    char_dim: int = 30             # character embedding size
    char_hidden: int = 50          # per direction of the character BiLSTM; CNN filters: twice
    hidden: int = 256              # per direction of the word BiLSTM; CoNLL-2003 +0.26 over 200 (3 seeds)
    layers: int = 1                # word BiLSTM layers
    doc_context: bool = True       # tokens also see their word's other mentions in the document
    context_dropout: float = 0.25  # share of training sentences read alone, as `tag` reads a line
    dropout: float = 0.5           # on the BiLSTM input and output (Lample et al.)
    locked_dropout: bool = False   # one dropout mask per sentence for all its tokens (Gal & Ghahramani)
    word_unk_prob: float = 0.5     # singleton training words replaced by UNK this often
    # Training
    epochs: int = 50
    patience: int = 16             # epochs without a better dev F1 before stopping (8 stopped runs early)
    batch_size: int = 16
    optimizer: str = "sgd"         # sgd (with momentum) or adam
    lr: float = 0.02
    momentum: float = 0.9
    lr_decay: float = 0.05         # lr / (1 + decay * epoch), as in Ma & Hovy 2016
    clip: float = 5.0              # gradient norm clipping
    average_decay: float = 0.0     # dev-score and save a moving average of the weights (0: off)
    seed: int = 1
    train_scheme: str = "bioes"    # BIOES gives the CRF explicit entity ends

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> Config:
        known = {field.name for field in fields(cls)}
        return cls(**{key: value for key, value in values.items() if key in known})
