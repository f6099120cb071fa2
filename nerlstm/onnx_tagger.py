"""Tagging with an exported ONNX file: onnxruntime and numpy, never torch.

The network runs in onnxruntime (see :mod:`nerlstm.onnx_export` for the graph); the CRF's
constrained Viterbi decoding and its marginal scores run here in numpy, batched over
sentences, as :mod:`nerlstm.crf` runs them in torch. :class:`OnnxTagger` answers what
:class:`nerlstm.tagging.Tagger` answers (``tag``, ``predict``, ``encoder``, ``model.config``,
``workers``), so that the records, :func:`nerlstm.records.tag_records`, the formatters,
evaluation and :class:`nerlstm.api.TextTagger` serve both.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from nerlstm import schemes
from nerlstm.batching import Encoder, batch_indices, clipped, context_batches
from nerlstm.config import Config
from nerlstm.errors import NerlstmError
from nerlstm.records import Entity, Tagged
from nerlstm.vocab import TagVocab, Vocab

METADATA_KEY = "nerlstm"
FORMAT = "nerlstm-onnx"
READABLE_VERSIONS = (1,)
FORBIDDEN = np.float32(-1e4)  # as nerlstm.crf.FORBIDDEN


def is_onnx(path: str | os.PathLike) -> bool:
    """Whether ``path`` names an ONNX file (by its extension)."""
    return str(path).lower().endswith(".onnx")


def _onnxruntime():
    try:
        import onnxruntime
    except ImportError:
        raise NerlstmError("tagging with an .onnx model needs onnxruntime: pip install "
                           "'nerlstm[onnx]'") from None
    return onnxruntime


def read_metadata(session, path: str) -> dict:
    """The checked nerlstm metadata of an ONNX session's model."""
    return checked_metadata(session.get_modelmeta().custom_metadata_map.get(METADATA_KEY),
                            path)


def checked_metadata(found: str | None, path: str) -> dict:
    """The nerlstm metadata from its JSON string in an ONNX file, checked."""
    try:
        metadata = json.loads(found) if found else None
    except ValueError:
        metadata = None
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT:
        raise NerlstmError("not a nerlstm ONNX file: no nerlstm metadata (write one with "
                           "nerlstm export)", path=path)
    if metadata.get("format_version") not in READABLE_VERSIONS:
        raise NerlstmError(f"ONNX model format version {metadata.get('format_version')} "
                           f"cannot be read by this nerlstm", path=path)
    return metadata


def read_onnx_file(path: str) -> tuple[dict, int]:
    """An exported file's nerlstm metadata and its number of parameters (the graph's
    weights and the CRF's transitions), read with the onnx package: no session is made and
    no torch is imported."""
    try:
        import onnx
    except ImportError:
        raise NerlstmError("reading an .onnx model's description needs the onnx package: pip "
                           "install 'nerlstm[onnx]'") from None
    if os.path.isdir(path):
        raise NerlstmError("is a directory, expected an ONNX model file", path=path)
    if not os.path.exists(path):
        raise NerlstmError("no such model file", path=path)
    try:
        model = onnx.load(path, load_external_data=False)
    except Exception as error:  # a foreign file fails to parse in many ways
        first = (str(error).splitlines() or [type(error).__name__])[0]
        raise NerlstmError(f"not an ONNX model, or a damaged one ({first[:200]})",
                           path=path) from None
    found = {entry.key: entry.value for entry in model.metadata_props}.get(METADATA_KEY)
    metadata = checked_metadata(found, path)
    crf = metadata["crf"]
    parameters = len(crf["start"]) + len(crf["end"]) + sum(map(len, crf["transitions"]))
    weights = (onnx.TensorProto.FLOAT, onnx.TensorProto.INT8, onnx.TensorProto.UINT8)
    graphs = [model.graph]
    while graphs:  # the loop's body holds the word BiLSTM's weights
        graph = graphs.pop()
        # weights, not the constants beside them: shapes, scalars, and int8 scales and zero
        # points (named so by onnxruntime's quantizer)
        parameters += sum(int(np.prod(tensor.dims)) for tensor in graph.initializer
                          if tensor.data_type in weights and int(np.prod(tensor.dims)) > 1
                          and not tensor.name.endswith(("_scale", "_zero_point")))
        graphs += [attribute.g for node in graph.node for attribute in node.attribute
                   if attribute.type == onnx.AttributeProto.GRAPH]
    return metadata, parameters


def load_onnx(path: str | os.PathLike, threads: int = 1) -> tuple[OnnxTagger, dict]:
    """The tagger in an exported ONNX file, running on ``threads`` CPU threads; and its
    metadata (config, vocabularies, summary, versions)."""
    path = str(path)
    ort = _onnxruntime()
    if os.path.isdir(path):
        raise NerlstmError("is a directory, expected an ONNX model file", path=path)
    if not os.path.exists(path):
        raise NerlstmError("no such model file", path=path)
    options = ort.SessionOptions()
    # several threads tag as that many calls at once, each on one onnxruntime thread: an
    # LSTM step is too small a product to share (on CoNLL-2003 test, AMD EPYC, two threads:
    # 51,000-55,000 tokens/s against 35,000-43,000 for two onnxruntime threads in one call)
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    try:
        session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    except Exception as error:  # onnxruntime raises its own classes for a foreign file
        first = (str(error).splitlines() or [type(error).__name__])[0]
        raise NerlstmError(f"not an ONNX model, or a damaged one ({first[:200]})",
                           path=path) from None
    metadata = read_metadata(session, path)
    tagger = OnnxTagger(session, metadata)
    tagger.workers = max(1, threads)
    return tagger, metadata


class OnnxNetwork:
    """The ONNX session with the config it was exported with (what ``Tagger.model`` is
    to the torch tagger)."""

    def __init__(self, session, config: Config) -> None:
        self.session = session
        self.config = config
        self.input_names = {entry.name for entry in session.get_inputs()}

    def emissions(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        """Shape (batch, length, tags)."""
        wanted = {name: value for name, value in feeds.items() if name in self.input_names}
        return self.session.run(["emissions"], wanted)[0]


class OnnxTagger:
    """Tags token lists with an ONNX network and a numpy CRF.

    Args:
        session: an onnxruntime session of a file written by ``nerlstm export``.
        metadata: its nerlstm metadata (:func:`read_metadata`).
    """

    def __init__(self, session, metadata: dict) -> None:
        config = Config.from_saved(metadata["config"])
        self.model = OnnxNetwork(session, config)
        self.encoder = Encoder(Vocab(metadata["words"]), Vocab(metadata["chars"]),
                               TagVocab(metadata["tags"]), config.doc_context)
        self.train_scheme = metadata["train_scheme"]
        self.workers = 1
        may_start, may_end, may_follow = schemes.allowed_transitions(self.encoder.tags.symbols,
                                                                     self.train_scheme)
        crf = metadata["crf"]
        self.start = np.where(may_start, np.float32(crf["start"]), FORBIDDEN).astype(np.float32)
        self.end = np.where(may_end, np.float32(crf["end"]), FORBIDDEN).astype(np.float32)
        self.transitions = np.where(may_follow, np.float32(crf["transitions"]),
                                    FORBIDDEN).astype(np.float32)

    def predict(self, token_lists: Sequence[Sequence[str]], batch_size: int = 256, *,
                contexts: Sequence[int] | None = None) -> list[list[str]]:
        """IOB2 tags for each token list, in input order (as ``Tagger.predict``)."""
        return [tagged.tags for tagged in self.tag(token_lists, batch_size, contexts=contexts)]

    def tag(self, token_lists: Sequence[Sequence[str]], batch_size: int = 256, *,
            scores: bool = False, contexts: Sequence[int] | None = None) -> list[Tagged]:
        """Tags and entities of each token list, in input order (as ``Tagger.tag``): a
        model with document context reads the token lists of one context together."""
        results = [Tagged([], []) for _ in token_lists]
        nonempty = [index for index, tokens in enumerate(token_lists) if tokens]
        if not self.encoder.doc_context:
            contexts = None
        if contexts is None:
            lengths = [len(token_lists[index]) for index in nonempty]
            groups = [[nonempty[i] for i in group] for group in batch_indices(lengths, batch_size)]
        else:
            groups = [[nonempty[i] for i in group] for group in context_batches(
                [contexts[index] for index in nonempty], min(batch_size, CHUNK_SENTENCES))]

        def tag_group(indices: list[int]) -> None:
            # longest first, as onnxruntime's LSTM steps the rows that are still going
            indices = sorted(indices, key=lambda index: -len(token_lists[index]))
            emissions, lengths = self.emissions(token_lists, indices, contexts)
            paths = best_paths(emissions, lengths, self.start, self.end, self.transitions)
            marginals = (forward_backward(emissions, lengths, self.start, self.end,
                                          self.transitions) if scores else None)
            for row, index in enumerate(indices):
                results[index] = self._result(row, int(lengths[row]), paths[row], emissions,
                                              marginals)

        if self.workers > 1 and len(groups) > 1:
            # onnxruntime releases the GIL while it runs: batches in threads share the cores
            with ThreadPoolExecutor(min(self.workers, len(groups))) as pool:
                list(pool.map(tag_group, groups))  # list() raises a worker's error here
        else:
            for indices in groups:
                tag_group(indices)
        return results

    def emissions(self, token_lists: Sequence[Sequence[str]], indices: list[int],
                  contexts: Sequence[int] | None) -> tuple[np.ndarray, np.ndarray]:
        """Tag scores (rows, length, tags), 0 past each row's end, and the rows' lengths, for
        the token lists at ``indices``, longest first."""
        feeds = self.feeds(token_lists, indices, contexts)
        flat = self.model.emissions(feeds)  # (tokens, tags), row by row
        lengths = feeds["lengths"].astype(np.int64)
        emissions = np.zeros((len(indices), lengths[0], flat.shape[1]), dtype=np.float32)
        emissions[np.arange(lengths[0])[None, :] < lengths[:, None]] = flat
        return emissions, lengths

    def feeds(self, token_lists: Sequence[Sequence[str]], indices: list[int],
              contexts: Sequence[int] | None) -> dict[str, np.ndarray]:
        """The graph's inputs for the token lists at ``indices``, longest first."""
        chosen = [token_lists[index] for index in indices]
        lengths = np.array([len(tokens) for tokens in chosen], dtype=np.int32)
        if np.any(lengths[1:] > lengths[:-1]):
            raise ValueError("feeds() takes rows longest first")
        inside = np.arange(lengths.max())[None, :] < lengths[:, None]
        flat = [token for tokens in chosen for token in tokens]
        encoder = self.encoder
        word_ids = np.zeros(inside.shape, dtype=np.int64)
        word_ids[inside] = [encoder.word_id(token) for token in flat]
        distinct: dict[str, int] = {}
        word_to_distinct = np.zeros(inside.shape, dtype=np.int64)
        word_to_distinct[inside] = [distinct.setdefault(token, len(distinct)) for token in flat]
        char_lengths = np.array([len(clipped(token)) for token in distinct], dtype=np.int32)
        char_ids = np.zeros((len(distinct), char_lengths.max()), dtype=np.int64)
        char_ids[np.arange(char_lengths.max())[None, :] < char_lengths[:, None]] = [
            char for token in distinct for char in encoder.char_ids(token)]
        feeds = {"word_ids": word_ids, "lengths": lengths, "char_ids": char_ids,
                 "char_lengths": char_lengths, "word_to_distinct": word_to_distinct,
                 "buckets": length_buckets(lengths)}
        if encoder.doc_context:
            # a group per (context, lowercased form); a sentence without a context is its own
            row_contexts = [contexts[index] if contexts is not None else -1 - row
                            for row, index in enumerate(indices)]
            numbering: dict[tuple[int, str], int] = {}
            feeds["group_ids"] = np.array([
                numbering.setdefault((context, token.lower()), len(numbering))
                for context, tokens in zip(row_contexts, chosen) for token in tokens],
                dtype=np.int64)
            if self.model.config.doc_summary:
                contexts_seen: dict[int, int] = {}
                feeds["context_ids"] = np.array([
                    contexts_seen.setdefault(context, len(contexts_seen))
                    for context, tokens in zip(row_contexts, chosen) for _ in tokens],
                    dtype=np.int64)
        return feeds

    def _result(self, row: int, length: int, path: np.ndarray, emissions: np.ndarray,
                marginals) -> Tagged:
        symbols = self.encoder.tags.symbols
        found = schemes.spans([symbols[tag] for tag in path[:length]])
        entities = [Entity(*span) for span in found]
        if marginals is not None:
            alpha, beta, log_z = (values[row] for values in marginals)
            for entity in entities:
                entity.score = self._span_probability(emissions[row], alpha, beta,
                                                      float(log_z), entity, length)
        return Tagged(schemes.tags_from_spans(found, length, "iob2"), entities)

    def _span_probability(self, emissions: np.ndarray, alpha: np.ndarray, beta: np.ndarray,
                          log_z: float, entity: Entity, length: int) -> float:
        """P(exactly this span with this type), as ``Tagger._span_probability``."""
        index = self.encoder.tags.index
        span = schemes.Span(entity.type, entity.start, entity.end)
        own = schemes.tags_from_spans([span], entity.end, self.train_scheme)[entity.start:]
        ids = [index[tag] for tag in own]

        def prefix_probability(tag_ids: list[int]) -> float:
            steps = np.arange(1, len(tag_ids))
            chain = (alpha[entity.start, tag_ids[0]]
                     + self.transitions[tag_ids[:-1], tag_ids[1:]].sum()
                     + emissions[entity.start + steps, tag_ids[1:]].sum()
                     + beta[entity.start + len(tag_ids) - 1, tag_ids[-1]])
            return float(np.exp(np.float32(chain) - np.float32(log_z)))

        probability = prefix_probability(ids)
        inside = f"I-{entity.type}"
        if self.train_scheme != "bioes" and entity.end < length and inside in index:
            probability -= prefix_probability(ids + [index[inside]])  # the longer entity
        return min(max(probability, 0.0), 1.0)


# With document context, the network reads whole contexts of at least this many sentences
# per call. The LSTM runs over buckets of similar length whatever the call's size, so the
# size only bounds the memory: on CoNLL-2003 test (AMD EPYC, two threads), calls of 32
# sentences tagged as fast as calls of 512 (57,000 tokens/s) at 156 MiB peak, against 405.
CHUNK_SENTENCES = 32

# A bucket of rows ends where a row is shorter than this share of the bucket's first: the
# LSTM steps each row of a bucket as long as the first, and each bucket is one more call.
BUCKET_SHARE = 0.8


def length_buckets(lengths: np.ndarray) -> np.ndarray:
    """Row bounds of the buckets the graph runs the LSTM over, rows longest first: bucket k
    is rows ``bounds[k]`` up to ``bounds[k + 1]``."""
    bounds = [0]
    for row in range(1, len(lengths)):
        if lengths[row] < BUCKET_SHARE * lengths[bounds[-1]]:
            bounds.append(row)
    bounds.append(len(lengths))
    return np.array(bounds, dtype=np.int64)


def still_going(lengths: np.ndarray, steps: int) -> np.ndarray:
    """For each step, how many rows (longest first) are still going: the loops below work on
    those rows alone, where np.where over every row cost two more calls a step and the
    finished rows' work (a quarter to a half of the numpy CRF's time)."""
    if np.any(lengths[1:] > lengths[:-1]):
        raise ValueError("the CRF takes rows longest first")
    return (lengths[None, :] > np.arange(steps)[:, None]).sum(axis=1)


def best_paths(emissions: np.ndarray, lengths: np.ndarray, start: np.ndarray, end: np.ndarray,
               transitions: np.ndarray) -> np.ndarray:
    """Constrained Viterbi over a batch: tag ids (batch, length), each row's path padded
    with its last tag.

    Args:
        emissions: (batch, length, tags).
        lengths: (batch,), at least 1 each, longest first.
        start, end: (tags,) scores of a first and a last tag, forbidden ones FORBIDDEN.
        transitions: (tags, tags) scores ``[from, to]``.
    """
    rows, steps, num_tags = emissions.shape
    going = still_going(lengths, steps)
    tags = np.arange(num_tags)
    score = start[None, :] + emissions[:, 0]  # (rows, tags)
    back = np.empty((steps, rows, num_tags), dtype=np.int64)  # read only where going
    for step in range(1, steps):
        rows_going = going[step]
        came_from = (score[:rows_going, :, None] + transitions[None, :, :]).argmax(axis=1)
        back[step, :rows_going] = came_from
        # the best candidate's score, added in the order the candidates were
        score[:rows_going] = (np.take_along_axis(score[:rows_going], came_from, axis=1)
                              + transitions[came_from, tags] + emissions[:rows_going, step])
    last = (score + end[None, :]).argmax(axis=1)
    path = np.empty((rows, steps), dtype=np.int64)
    path[:, steps - 1] = last
    for step in range(steps - 1, 0, -1):
        rows_going = going[step]
        last[:rows_going] = back[step, np.arange(rows_going), last[:rows_going]]
        path[:, step - 1] = last
    return path


def _log_product(log_values: np.ndarray, exp_matrix: np.ndarray) -> np.ndarray:
    """``log(exp(log_values) @ exp_matrix)`` per row, its maximum taken out first."""
    top = log_values.max(axis=1, keepdims=True)
    with np.errstate(divide="ignore"):
        return np.log(np.exp(log_values - top) @ exp_matrix) + top


def forward_backward(emissions: np.ndarray, lengths: np.ndarray, start: np.ndarray,
                     end: np.ndarray, transitions: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Forward and backward log-scores (batch, length, tags), valid up to each row's
    length, and the log-partition (batch,): what marginal scores are made of. Rows longest
    first."""
    rows, steps, _ = emissions.shape
    going = still_going(lengths, steps)
    weights = np.exp(transitions)
    alpha = np.zeros_like(emissions)
    alpha[:, 0] = start + emissions[:, 0]
    for step in range(1, steps):
        rows_going = going[step]
        alpha[:rows_going, step] = (_log_product(alpha[:rows_going, step - 1], weights)
                                    + emissions[:rows_going, step])
    ends = alpha[np.arange(rows), lengths - 1] + end
    top = ends.max(axis=1)
    log_z = np.log(np.exp(ends - top[:, None]).sum(axis=1)) + top
    beta = np.empty_like(emissions)
    beta[:] = end  # a row's last step; the steps past it are not read
    for step in range(steps - 2, -1, -1):
        rows_going = going[step + 1]
        beta[:rows_going, step] = _log_product(emissions[:rows_going, step + 1]
                                               + beta[:rows_going, step + 1], weights.T)
    return alpha, beta, log_z


def load_onnx_tagger(path: str | os.PathLike, *, device: str = "auto", threads: int | None = None,
                     precision: str = "float32") -> tuple[OnnxTagger, dict]:
    """:func:`load_onnx` with ``nerlstm.api.load_tagger``'s arguments: an ONNX file runs on
    the CPU, in the precision it was exported in; ``threads`` None uses the free cores."""
    if device not in ("auto", "cpu"):
        raise NerlstmError(f"device {device!r}: an .onnx model runs on the CPU (use --device "
                           f"cpu, or the .pt model)", exit_code=2)
    if precision != "float32":
        raise NerlstmError(f"--precision {precision}: an .onnx model runs as it was exported "
                           f"(float32, or int8 with export --quantize int8)", exit_code=2)
    if not threads:
        from nerlstm import runtime

        most = runtime.usable_cores()
        threads = runtime.free_threads(runtime.STARTED, runtime.cpu_sample(), most) or most
    return load_onnx(path, threads)
