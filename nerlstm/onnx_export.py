"""`nerlstm export`: a model file as one ONNX file that tags without torch.

The graph is the encoder up to the emission scores: characters (CNN or BiLSTM), word
embeddings, the word BiLSTM (ONNX's LSTM operator, each row read up to its own length, in a
Loop over buckets of rows of similar length) and, for a model with document context, the
pooling of each word's scores over its group, all with a dynamic batch and length.
Everything else that tagging needs (vocabularies, tags and scheme, tokenizer, CRF
transitions, config, versions, the training summary) is one JSON string in the file's
metadata under ``nerlstm``: plain data, nothing pickled.

Graph inputs (``B`` sentences, longest first, of at most ``T`` tokens, ``N`` tokens in all;
``W`` distinct words of at most ``C`` characters):
    word_ids: int64 (B, T), 0 past each sentence's end.
    lengths: int32 (B,), tokens per sentence, not increasing.
    char_ids: int64 (W, C), each distinct word's characters, 0 past its end.
    char_lengths: int32 (W,), characters per distinct word (character BiLSTM only).
    word_to_distinct: int64 (B, T), each token's row of ``char_ids``.
    buckets: int64 (K + 1,), row bounds: bucket k is rows buckets[k] up to buckets[k + 1].
    group_ids: int64 (N,), document context only, the tokens sentence by sentence: tokens
        of one context with one lowercased form share an id, from 0.
    context_ids: int64 (N,), document summary only, the tokens sentence by sentence: each
        token's context, numbered from 0.
Output:
    emissions: float32 (N, tags), the tokens sentence by sentence.
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
# What --quantize int8 quantizes: the BiLSTM, the output layer, the embedding tables (a
# quarter of the file). Not the character CNN: onnxruntime's ConvInteger took 4 to 7 times as
# long as the float Conv (on CoNLL-2003 test, AMD EPYC, one thread: 33,000 tokens per
# CPU-second with it, 39,000 without, float32 24,000).
QUANTIZED_OPS = ["LSTM", "MatMul", "Gather"]


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
            (:data:`QUANTIZED_OPS`), or None for float32.

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
                quantize_dynamic(plain, quantized, weight_type=QuantType.QInt8,
                                 op_types_to_quantize=QUANTIZED_OPS,
                                 extra_options={"EnableSubgraph": True})
            finally:
                root.setLevel(level)
            plain = quantized
        import onnx

        final = onnx.load(plain)
        if quantize and not any(entry.domain == "com.microsoft" for entry in final.opset_import):
            # onnxruntime's int8 operators, inside the loop only, where the quantizer does
            # not look when it declares the domains it used
            final.opset_import.append(onnx.helper.make_opsetid("com.microsoft", 1))
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
        self.nodes.append(helper.make_node(kind, inputs, names, name=names[0], **attributes))
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
        # -inf added at the padding: a Where over (W, filters, C) took twice as long
        minus_inf = g.constant("minus_inf", np.array(-np.inf, dtype=np.float32))
        padding = g.op("Unsqueeze", [g.op("Where", [
            g.op("Equal", ["char_ids", ints("zero", 0)]), minus_inf,
            g.constant("zero_float", np.array(0.0, dtype=np.float32))]), ints("axis_1", [1])])
        per_word = g.op("ReduceMax", [g.op("Add", [convolved, padding])], axes=[2], keepdims=0)
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
    if config.char_projection:
        per_word = g.op("Add", [
            g.op("MatMul", [per_word, g.constant(
                "char_projection_weight", weights["char_projection.weight"].T.copy())]),
            g.constant("char_projection_bias", weights["char_projection.bias"])])
    out_weight, bias = weights["to_tags.weight"], weights["to_tags.bias"]
    if config.doc_context:
        inputs.append(helper.make_tensor_value_info("group_ids", TensorProto.INT64, ["tokens"]))
        state_size = 2 * config.hidden
        if config.doc_summary:
            inputs.append(helper.make_tensor_value_info("context_ids", TensorProto.INT64,
                                                        ["tokens"]))
        # the output layer's weights for a token's own states, then for its group's mean
        # (and its context's mean), as BiLstmCrf.pooling_weight
        projection = np.concatenate(np.split(out_weight, out_weight.shape[1] // state_size,
                                             axis=1)).T
    else:
        projection = out_weight.T
    inputs.append(helper.make_tensor_value_info("buckets", TensorProto.INT64, ["buckets+1"]))
    products = _bucket_loop(g, config, weights, per_word, projection)  # (tokens, outputs)
    if config.doc_context:
        emissions = _pooled_scores(g, products, bias, num_tags, config.doc_summary)
    else:
        emissions = g.op("Add", [products, g.constant("to_tags_bias", bias)])
    g.op("Identity", [emissions])
    g.nodes[-1].output[0] = "emissions"
    output = helper.make_tensor_value_info("emissions", TensorProto.FLOAT, ["tokens", num_tags])
    graph = helper.make_graph(g.nodes, "nerlstm", inputs, [output], g.initializers)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                             producer_name="nerlstm")


def _bucket_loop(g: GraphBuilder, config, weights: dict, per_word: str,
                 projection: np.ndarray) -> str:
    """The word BiLSTM and the output layer's products, run over each bucket of rows in a
    Loop: rows ``buckets[k]`` up to ``buckets[k + 1]``, each bucket only as long as its
    first (longest) row. onnxruntime's LSTM steps every row of a call to the call's longest,
    so one call over a document chunk (rows of 1 to 124 tokens) spent five times the work.
    Returns the products of the real tokens, (tokens, outputs), row by row."""
    from onnx import TensorProto, helper

    body = GraphBuilder()
    body.count = 10_000  # names apart from the outer graph's
    # onnxruntime types the iteration number as shape (1,), the standard as a scalar
    step = body.op("Reshape", ["step", "scalar_shape"])
    # constants of the body its own: onnxruntime types outer ones of rank 0 as rank 1
    one = body.op("Constant", [], value=helper.make_tensor("one", TensorProto.INT64, [], [1]))
    zero = body.op("Constant", [], value=helper.make_tensor("zero", TensorProto.INT64, [], [0]))
    start = body.op("Gather", ["buckets", step])
    end = body.op("Gather", ["buckets", body.op("Add", [step, one])])
    length = body.op("Cast", [body.op("Gather", ["lengths", start])], to=TensorProto.INT64)
    starts = body.op("Concat", [body.op("Unsqueeze", [start, "axis_0"]), "zero_1"], axis=0)
    ends = body.op("Concat", [body.op("Unsqueeze", [end, "axis_0"]),
                              body.op("Unsqueeze", [length, "axis_0"])], axis=0)
    word_ids = body.op("Slice", ["word_ids", starts, ends, "axes_01"])  # (rows, length)
    distinct = body.op("Slice", ["word_to_distinct", starts, ends, "axes_01"])
    lengths = body.op("Slice", ["lengths", body.op("Unsqueeze", [start, "axis_0"]),
                                body.op("Unsqueeze", [end, "axis_0"]), "axis_0"])
    body.constant("word_embedding", weights["word_embedding.weight"])
    body.constant("projection", projection)
    states = body.op("Transpose", [body.op("Concat", [
        body.op("Gather", ["word_embedding", word_ids]),
        body.op("Gather", ["chars", distinct])], axis=2)], perm=[1, 0, 2])
    for layer in range(config.layers):
        w, r, b = lstm_weights(weights, "lstm", [f"l{layer}", f"l{layer}_reverse"])
        # the weights are the body's own, where the int8 quantizer looks for them
        every = body.op("LSTM", [states, body.constant(f"lstm_W_{layer}", w),
                                 body.constant(f"lstm_R_{layer}", r),
                                 body.constant(f"lstm_B_{layer}", b), lengths],
                        hidden_size=config.hidden, direction="bidirectional")
        # every: (length, 2, rows, hidden) -> (length, rows, 2 * hidden), forward then backward
        states = body.op("Reshape", [body.op("Transpose", [every], perm=[0, 2, 1, 3]),
                                     "shape_states"])
    products = body.op("MatMul", [body.op("Transpose", [states], perm=[1, 0, 2]),
                                  "projection"])  # (rows, length, outputs)
    positions = body.op("Unsqueeze", [body.op("Range", [zero, length, one]),
                                      "axis_0"])
    real = body.op("Less", [positions, body.op("Unsqueeze", [
        body.op("Cast", [lengths], to=TensorProto.INT64), "axis_1_rows"])])  # (rows, length)
    kept = body.op("Compress", [body.op("Reshape", [products, "shape_tokens"]),
                                body.op("Reshape", [real, "flat"])], axis=0)
    body.op("Concat", ["so_far", kept], axis=0)
    body.nodes[-1].output[0] = "so_far_out"
    body.op("Identity", ["going"])
    body.nodes[-1].output[0] = "going_out"
    # the characters' features come in as a loop-carried value, passed on unchanged: read
    # from the outer scope, they were out of sight of the int8 quantizer's node ordering
    body.op("Identity", ["chars"])
    body.nodes[-1].output[0] = "chars_out"
    outputs = projection.shape[1]
    graph = helper.make_graph(
        body.nodes, "bucket",
        [helper.make_tensor_value_info("step", TensorProto.INT64, []),
         helper.make_tensor_value_info("going", TensorProto.BOOL, None),
         helper.make_tensor_value_info("so_far", TensorProto.FLOAT, [None, outputs]),
         helper.make_tensor_value_info("chars", TensorProto.FLOAT, [None, None])],
        [helper.make_tensor_value_info("going_out", TensorProto.BOOL, None),
         helper.make_tensor_value_info("so_far_out", TensorProto.FLOAT, [None, outputs]),
         helper.make_tensor_value_info("chars_out", TensorProto.FLOAT, [None, None])],
        [*body.initializers])
    for name, value in (("axis_0", [0]), ("axis_1_rows", [1]), ("zero_1", [0]), ("axes_01", [0, 1]),
                        ("shape_states", [0, 0, -1]), ("shape_tokens", [-1, outputs]),
                        ("flat", [-1]), ("scalar_shape", [])):
        g.constant(name, np.array(value, dtype=np.int64))
    count = g.op("Sub", [g.op("Size", ["buckets"]), g.constant("one_scalar", np.array(1))])
    empty = g.constant("no_products", np.zeros((0, outputs), dtype=np.float32))
    going = g.constant("true", np.array(True))
    return g.op("Loop", [count, going, empty, per_word], outputs=2, body=graph)[0]


def _pooled_scores(g: GraphBuilder, products: str, bias: np.ndarray, num_tags: int,
                   summary: bool) -> str:
    """Emissions with document context, from the products (tokens, blocks * tags) with the
    pooling weights: each token's own scores plus the mean over its group of the scores of
    the mean-state block (the mean of products is the product of the mean; see
    ``BiLstmCrf.pooling_weight``), plus, with the summary, the mean over its context of the
    last block's."""
    blocks = 3 if summary else 2
    own, shared, *summary_block = g.op("Split", [products, g.constant("blocks", np.array(
        [num_tags] * blocks, dtype=np.int64))], outputs=blocks, axis=1)
    scores = g.op("Add", [own, _group_means(g, shared, "group_ids", num_tags)])
    if summary:
        scores = g.op("Add", [scores, _group_means(g, summary_block[0], "context_ids",
                                                   num_tags)])
    return g.op("Add", [scores, g.constant("to_tags_bias", bias)])


def _group_means(g: GraphBuilder, values: str, ids: str, num_tags: int) -> str:
    """For each row of ``values`` (tokens, tags), the mean of the rows sharing its id in the
    graph input ``ids`` (tokens,)."""
    from onnx import TensorProto, helper

    groups = g.op("Add", [g.op("ReduceMax", [ids], keepdims=1),
                          g.constant(f"{ids}_one", np.array([1], np.int64))])  # (1,)
    zero_tensor = helper.make_tensor("zero_value", TensorProto.FLOAT, [1], [0.0])
    one_tensor = helper.make_tensor("one_value", TensorProto.FLOAT, [1], [1.0])
    table = g.op("ConstantOfShape", [g.op("Concat", [groups, g.constant(
        f"{ids}_tags_count", np.array([num_tags], np.int64))], axis=0)], value=zero_tensor)
    index = g.op("Unsqueeze", [ids, g.constant(f"{ids}_last_axis", np.array([1], np.int64))])
    sums = g.op("ScatterND", [table, index, values], reduction="add")
    ones = g.op("ConstantOfShape", [g.op("Shape", [ids])], value=one_tensor)
    counts = g.op("ScatterND", [g.op("ConstantOfShape", [groups], value=zero_tensor), index,
                                ones], reduction="add")
    counts = g.op("Unsqueeze", [g.op("Max", [counts, g.constant(
        f"{ids}_one_float", np.array([1.0], np.float32))]), f"{ids}_last_axis"])  # (groups, 1)
    return g.op("Gather", [g.op("Div", [sums, counts]), ids])
