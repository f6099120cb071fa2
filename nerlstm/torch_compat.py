"""The few torch internals that nerlstm leans on for speed, each behind one function.

Each function uses the internal where it answers, and falls back to public API that gives
the same result where a torch release has changed or dropped it. Importing this module does
not import torch, so that :func:`configure_onednn_cache` can run before torch loads oneDNN.
"""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


def configure_onednn_cache() -> None:
    """Keep oneDNN's cache of compiled primitives small, unless the user has set it.

    oneDNN keeps a thousand compiled primitives by default, and its LSTM primitives are
    large: with the ever-new batch shapes of training the cache grows the process by
    hundreds of megabytes, while a small cache is no slower. oneDNN reads the setting when
    it first builds a primitive, so this must run before the first LSTM call.
    """
    os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "16")


_fused_lstm = True  # until torch.lstm refuses its positional arguments


def lstm_direction(inputs: torch.Tensor, initial: torch.Tensor, weights: Sequence[torch.Tensor],
                   has_biases: bool, training: bool) -> torch.Tensor:
    """One direction of one LSTM layer over batch-first ``inputs``, from the ``initial``
    states; returns every step's output.

    Args:
        inputs: shape (batch, length, features).
        initial: shape (1, batch, hidden), used as both the hidden and the cell state.
        weights: ``w_ih, w_hh`` and, with ``has_biases``, ``b_ih, b_hh``, as one entry of
            ``nn.LSTM.all_weights``.
        has_biases: whether ``weights`` holds biases.
        training: whether the LSTM runs in training mode (which keeps what backward needs).

    Returns:
        Shape (batch, length, hidden).

    ``torch.lstm`` takes flat weights, so that no module is built per call; its positional
    signature is internal. Where it fails, an ``nn.LSTM`` run with these weights computes
    the same numbers through the same kernel.
    """
    global _fused_lstm
    import torch

    if _fused_lstm:
        try:
            output, _, _ = torch.lstm(inputs, (initial, initial), list(weights), has_biases,
                                      1, 0.0, training, False, True)
            return output
        except (TypeError, AttributeError):  # the internal signature changed
            _fused_lstm = False
    return _module_lstm(inputs, initial, weights, has_biases, training)


def _module_lstm(inputs: torch.Tensor, initial: torch.Tensor, weights: Sequence[torch.Tensor],
                 has_biases: bool, training: bool) -> torch.Tensor:
    """:func:`lstm_direction` through ``nn.LSTM`` and ``torch.func.functional_call``."""
    import torch
    from torch import nn

    hidden = weights[1].shape[1]
    with torch.device("meta"):
        module = nn.LSTM(weights[0].shape[1], hidden, bias=has_biases, batch_first=True)
    module.train(training)
    names = ["weight_ih_l0", "weight_hh_l0"] + (["bias_ih_l0", "bias_hh_l0"] if has_biases else [])
    output, _ = torch.func.functional_call(module, dict(zip(names, weights)),
                                           (inputs, (initial, initial)))
    return output


def cpu_has_bfloat16() -> bool:
    """Whether this CPU computes in bfloat16 natively (AVX512-BF16 or AMX), as oneDNN sees it.

    Without oneDNN's own answer, torch's CPU capability decides; where that names neither,
    False: emulated bfloat16 is slower than float32.
    """
    import torch

    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        capability = str(torch.backends.cpu.get_cpu_capability()).upper()
        return "AMX" in capability or "BF16" in capability


def lerp_all_(targets: Sequence[torch.Tensor], sources: Sequence[torch.Tensor],
              weight: float) -> None:
    """``target.lerp_(source, weight)`` for each pair, in place.

    ``torch._foreach_lerp_`` does all of them in one call, without a Python step per tensor;
    where it is missing, the tensors are stepped one by one, to the same numbers.
    """
    import torch

    foreach = getattr(torch, "_foreach_lerp_", None)
    if foreach is not None:
        try:
            foreach(list(targets), list(sources), weight)
            return
        except (TypeError, NotImplementedError):
            pass
    for target, source in zip(targets, sources):
        target.lerp_(source, weight)


# Environment variables that steer torch's math libraries to other code paths.
LIBRARY_SWITCHES = ("MKL_CBWR", "MKL_ENABLE_INSTRUCTIONS", "ONEDNN_MAX_CPU_ISA",
                    "DNNL_MAX_CPU_ISA", "ONEDNN_DEFAULT_FPMATH_MODE", "ATEN_CPU_CAPABILITY",
                    "OMP_NUM_THREADS")


def cpu_description() -> dict:
    """The CPU's model name and the vector instructions that matter to the libraries."""
    model, flags = platform.processor(), set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                key, _, value = line.partition(":")
                if key.strip() == "model name":
                    model = value.strip()
                elif key.strip() == "flags":
                    flags = set(value.split())
    except OSError:
        pass
    wanted = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16")
    return {"model": model, "flags": [flag for flag in wanted if flag in flags]}


def numerics_environment() -> dict:
    """What torch says about how it computes in float32 here: the same steps give the same
    numbers only where all of this is the same (and on one thread)."""
    import torch

    config = torch.__config__.show()
    libraries = [line.strip(" -") for line in config.splitlines()
                 if "Math Kernel Library" in line or "MKL-DNN" in line or "oneDNN" in line]
    return {"cpu": cpu_description(), "python": sys.version.split()[0],
            "torch": str(torch.__version__),
            "float32_matmul_precision": torch.get_float32_matmul_precision(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "mkl": torch.backends.mkl.is_available(),
            "mkldnn_enabled": torch.backends.mkldnn.enabled,
            "libraries": libraries,
            "switches": {name: os.environ[name] for name in LIBRARY_SWITCHES
                         if name in os.environ}}
