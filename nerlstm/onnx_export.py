"""`nerlstm export`: a model file as one ONNX file that tags without torch.

The graph is the encoder up to the emission scores: characters (CNN or BiLSTM), word
embeddings, the word BiLSTM (ONNX's LSTM operator, each row read up to its own length) and,
for a model with document context, the pooling of each word's scores over its group, all
with a dynamic batch and length. Everything else that tagging needs (vocabularies, tags and
scheme, tokenizer, CRF transitions, config, versions, the training summary) is one JSON
string in the file's metadata under ``nerlstm``: plain data, nothing pickled.

Graph inputs (``B`` sentences of at most ``T`` tokens, ``W`` distinct words of at most ``C``
characters):
    word_ids: int64 (B, T), 0 past each sentence's end.
    lengths: int32 (B,), tokens per sentence.
    char_ids: int64 (W, C), each distinct word's characters, 0 past its end.
    char_lengths: int32 (W,), characters per distinct word (character BiLSTM only).
    word_to_distinct: int64 (B, T), each token's row of ``char_ids``.
    group_ids: int64 (B, T), document context only: tokens of one context with one
        lowercased form share an id, from 1; 0 past each sentence's end.
Output:
    emissions: float32 (B, T, tags).
"""

from __future__ import annotations

import json
import logging
import os
import tempfile

import numpy as np

from nerlstm import __version__
from nerlstm.errors import NerlstmError

FORMAT = "nerlstm-onnx"
FORMAT_VERSION = 1
METADATA_KEY = "nerlstm"
OPSET = 17  # ScatterND's reduction (16); ReduceMax still takes its axes as an attribute


def require_onnx() -> None:
    """Raise a one-line error where the export's packages are missing."""
    try:
        import onnx  # noqa: F401
    except ImportError:
        raise NerlstmError("export needs the onnx package: pip install 'nerlstm[onnx]'",
                           exit_code=1) from None


def export(model: str, output: str, *, quantize: str | None = None) -> dict:
    """Write the model file ``model`` as the ONNX file ``output``; return its metadata.

    Args:
        model: a model file written by ``nerlstm train``.
        output: the ``.onnx`` file to write (whole or not at all).
        quantize: ``int8`` for onnxruntime's dynamic quantization of the weights
            (LSTM and matrix products), or None for float32.

    Raises:
        NerlstmError: on a bad model file, a bad option or a missing package.
    """
    if quantize not in (None, "int8"):
        raise NerlstmError(f"--quantize {quantize}: expected int8", exit_code=2)
    require_onnx()
    import torch

    from nerlstm.modelfile import read_payload, tagger_from_payload

    payload = read_payload(model)
    tagger = tagger_from_payload(payload)  # checks that the weights fit the config
    config = tagger.model.config
    weights = {name: tensor.detach().float().numpy()
               for name, tensor in tagger.model.state_dict().items()}
    crf = tagger.model.crf
    metadata = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "nerlstm_version": __version__,
        "torch_version": str(torch.__version__),
        "model_format_version": payload["format_version"],
        "source": os.path.basename(str(model)),
        "quantized": quantize,
        "config": config.to_dict(),
        "words": tagger.encoder.words.symbols[2:],
        "chars": tagger.encoder.chars.symbols[2:],
        "tags": tagger.encoder.tags.symbols,
        "train_scheme": tagger.train_scheme,
        "crf": {"start": crf.start_transitions.detach().tolist(),
                "end": crf.end_transitions.detach().tolist(),
                "transitions": crf.transitions.detach().tolist()},
        "summary": payload.get("summary") or {},
    }
    graph_model = build_graph(config, weights, len(tagger.encoder.tags))
    folder = os.path.dirname(os.path.abspath(output))
    if not os.path.isdir(folder):
        raise NerlstmError("no such folder", path=os.path.dirname(str(output)) or ".")
    with tempfile.TemporaryDirectory(dir=folder, prefix=".export.") as work:
        plain = os.path.join(work, "model.onnx")
        _save(graph_model, plain)
        if quantize == "int8":
            from onnxruntime.quantization import QuantType, quantize_dynamic

            quantized = os.path.join(work, "int8.onnx")
            root = logging.getLogger()
            level = root.level
            root.setLevel(logging.ERROR)  # its advice to pre-process applies to CNNs for images
            try:
                quantize_dynamic(plain, quantized, weight_type=QuantType.QInt8)
            finally:
                root.setLevel(level)
            plain = quantized
        import onnx

        final = onnx.load(plain)
        del final.metadata_props[:]
        entry = final.metadata_props.add()
        entry.key, entry.value = METADATA_KEY, json.dumps(metadata)
        final.producer_name, final.producer_version = "nerlstm", __version__
        _save(final, os.path.join(work, "final.onnx"))
        os.replace(os.path.join(work, "final.onnx"), output)
    return metadata


def _save(model, path: str) -> None:
    import onnx

    onnx.checker.check_model(model)
    onnx.save(model, path)


def lstm_weights(weights: dict, prefix: str, suffixes: list[str]):
    """ONNX's W, R and B for an LSTM layer from torch's, one entry per direction in
    ``suffixes``: torch orders the gates input, forget, cell, output; ONNX input,
    output, forget, cell."""
    def reorder(matrix: np.ndarray) -> np.ndarray:
        i, f, g, o = np.split(matrix, 4, axis=0)
        return np.concatenate([i, o, f, g], axis=0)

    w = np.stack([reorder(weights[f"{prefix}.weight_ih_{s}"]) for s in suffixes])
    r = np.stack([reorder(weights[f"{prefix}.weight_hh_{s}"]) for s in suffixes])
    b = np.stack([np.concatenate([reorder(weights[f"{prefix}.bias_ih_{s}"]),
                                  reorder(weights[f"{prefix}.bias_hh_{s}"])])
                  for s in suffixes])
    return w, r, b


class GraphBuilder:
    """Nodes and initializers, added in order, with fresh names."""

    def __init__(self) -> None:
        self.nodes: list = []
        self.initializers: list = []
        self.count = 0

    def constant(self, name: str, value: np.ndarray) -> str:
        from onnx import numpy_helper

        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def op(self, kind: str, inputs: list[str], outputs: int = 1, **attributes) -> str | list[str]:
        from onnx import helper

        self.count += 1
        names = [f"{kind.lower()}_{self.count}_{n}" for n in range(outputs)]
        self.nodes.append(helper.make_node(kind, inputs, names, **attributes))
        return names[0] if outputs == 1 else names


def build_graph(config, weights: dict, num_tags: int):
    """The ONNX model of the encoder (see the module's docstring)."""
    from onnx import TensorProto, helper

    g = GraphBuilder()
    ints = lambda name, values: g.constant(name, np.array(values, dtype=np.int64))  # noqa: E731
    inputs = [helper.make_tensor_value_info("word_ids", TensorProto.INT64, ["batch", "length"]),
              helper.make_tensor_value_info("lengths", TensorProto.INT32, ["batch"]),
              helper.make_tensor_value_info("char_ids", TensorProto.INT64, ["words", "chars"]),
              helper.make_tensor_value_info("word_to_distinct", TensorProto.INT64,
                                            ["batch", "length"])]
    # characters: (W, C) -> (W, features)
    char_table = g.constant("char_embedding", weights["char_encoder.embedding.weight"])
    embedded = g.op("Gather", [char_table, "char_ids"])  # (W, C, char_dim)
    if config.char_encoder == "cnn":
        conv_weight = weights["char_encoder.conv.weight"]
        width = conv_weight.shape[2]
        convolved = g.op("Conv", [g.op("Transpose", [embedded], perm=[0, 2, 1]),
                                  g.constant("char_conv_weight", conv_weight),
                                  g.constant("char_conv_bias", weights["char_encoder.conv.bias"])],
                         pads=[width // 2, width // 2])  # (W, filters, C)
        padding = g.op("Unsqueeze", [g.op("Equal", ["char_ids", ints("zero", 0)]),
                                     ints("axis_1", [1])])
        minus_inf = g.constant("minus_inf", np.array(-np.inf, dtype=np.float32))
        per_word = g.op("ReduceMax", [g.op("Where", [padding, minus_inf, convolved])],
                        axes=[2], keepdims=0)
        if config.char_cnn_tanh:
            per_word = g.op("Tanh", [per_word])
    else:
        inputs.append(helper.make_tensor_value_info("char_lengths", TensorProto.INT32, ["words"]))
        w, r, b = lstm_weights(weights, "char_encoder.lstm", ["l0", "l0_reverse"])
        _, final, _ = g.op("LSTM", [g.op("Transpose", [embedded], perm=[1, 0, 2]),
                                    g.constant("char_lstm_W", w), g.constant("char_lstm_R", r),
                                    g.constant("char_lstm_B", b), "char_lengths"],
                           outputs=3, hidden_size=config.char_hidden, direction="bidirectional")
        # final: (2, W, hidden), forward then backward
        per_word = g.op("Reshape", [g.op("Transpose", [final], perm=[1, 0, 2]),
                                    ints("shape_rows", [0, -1])])
    chars = g.op("Gather", [per_word, "word_to_distinct"])  # (B, T, char features)
    words = g.op("Gather", [g.constant("word_embedding", weights["word_embedding.weight"]),
                            "word_ids"])
    states = g.op("Transpose", [g.op("Concat", [words, chars], axis=2)], perm=[1, 0, 2])
    for layer in range(config.layers):
        w, r, b = lstm_weights(weights, "lstm", [f"l{layer}", f"l{layer}_reverse"])
        every = g.op("LSTM", [states, g.constant(f"lstm_W_{layer}", w),
                              g.constant(f"lstm_R_{layer}", r), g.constant(f"lstm_B_{layer}", b),
                              "lengths"],
                     hidden_size=config.hidden, direction="bidirectional")
        # every: (T, 2, B, hidden) -> (T, B, 2 * hidden), forward states then backward
        states = g.op("Reshape", [g.op("Transpose", [every], perm=[0, 2, 1, 3]),
                                  ints(f"shape_states_{layer}", [0, 0, -1])])
    states = g.op("Transpose", [states], perm=[1, 0, 2])  # (B, T, 2 * hidden)
    out_weight, bias = weights["to_tags.weight"], weights["to_tags.bias"]
    if not config.doc_context:
        emissions = g.op("Add", [g.op("MatMul", [states, g.constant("to_tags", out_weight.T)]),
                                 g.constant("to_tags_bias", bias)])
    else:
        inputs.append(helper.make_tensor_value_info("group_ids", TensorProto.INT64,
                                                    ["batch", "length"]))
        emissions = _pooled_scores(g, states, out_weight, bias, 2 * config.hidden, num_tags)
    g.op("Identity", [emissions])
    g.nodes[-1].output[0] = "emissions"
    output = helper.make_tensor_value_info("emissions", TensorProto.FLOAT,
                                           ["batch", "length", num_tags])
    graph = helper.make_graph(g.nodes, "nerlstm", inputs, [output], g.initializers)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                             producer_name="nerlstm")


def _pooled_scores(g: GraphBuilder, states: str, out_weight: np.ndarray, bias: np.ndarray,
                   state_size: int, num_tags: int) -> str:
    """Emissions with document context: each token's own scores plus the mean over its
    group of the scores of the mean-state half of the output layer (the mean of products
    is the product of the mean; see ``BiLstmCrf.pooling_weight``)."""
    from onnx import TensorProto, helper

    both = np.concatenate([out_weight[:, :state_size], out_weight[:, state_size:]])
    products = g.op("MatMul", [states, g.constant("pooling_weight", both.T)])  # (B, T, 2K)
    own, shared = g.op("Split", [products, g.constant("halves", np.array(
        [num_tags, num_tags], dtype=np.int64))], outputs=2, axis=2)
    flat_ids = g.op("Reshape", ["group_ids", g.constant("flat", np.array([-1], np.int64))])
    flat_shared = g.op("Reshape", [shared, g.constant("rows_by_tags", np.array(
        [-1, num_tags], np.int64))])  # (N, K)
    groups = g.op("Add", [g.op("ReduceMax", [flat_ids], keepdims=1),
                          g.constant("one", np.array([1], np.int64))])  # (1,)
    zero_tensor = helper.make_tensor("zero_value", TensorProto.FLOAT, [1], [0.0])
    one_tensor = helper.make_tensor("one_value", TensorProto.FLOAT, [1], [1.0])
    table = g.op("ConstantOfShape", [g.op("Concat", [groups, g.constant(
        "tags_count", np.array([num_tags], np.int64))], axis=0)], value=zero_tensor)
    index = g.op("Unsqueeze", [flat_ids, g.constant("last_axis", np.array([1], np.int64))])
    sums = g.op("ScatterND", [table, index, flat_shared], reduction="add")
    ones = g.op("ConstantOfShape", [g.op("Shape", [flat_ids])], value=one_tensor)
    counts = g.op("ScatterND", [g.op("ConstantOfShape", [groups], value=zero_tensor), index,
                                ones], reduction="add")
    counts = g.op("Unsqueeze", [g.op("Max", [counts, g.constant(
        "one_float", np.array([1.0], np.float32))]), "last_axis"])  # (G, 1)
    means = g.op("Div", [sums, counts])
    pooled = g.op("Reshape", [g.op("Gather", [means, flat_ids]), g.op("Shape", [shared])])
    return g.op("Add", [g.op("Add", [own, pooled]), g.constant("to_tags_bias", bias)])
