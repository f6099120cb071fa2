"""--device cuda gives the CPU's results: training, eval and tag through the CLI, and the
model's pieces. Skipped without a CUDA GPU (CI has none; run on a GPU machine)."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import DATA, TINY, run_cli

from nerlstm.batching import context_ids
from nerlstm.conll import read_tagged
from nerlstm.crf import constrained_scores, forward_backward, viterbi
from nerlstm.modelfile import load_model

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def test_cuda_training_through_the_cli_gives_a_model_the_cpu_can_use(tmp_path):
    model = tmp_path / "m.pt"
    result = run_cli("train", DATA / "train.txt", "--dev", DATA / "dev.txt", "-m", model,
                     *TINY, "--device", "cuda")
    assert result.exit_code == 0, result.output
    on_cpu = run_cli("eval", DATA / "test.txt", "-m", model, "--json")
    assert on_cpu.exit_code == 0, on_cpu.output
    assert json.loads(on_cpu.stdout)["f1"] > 0.3  # it learnt; TINY on CPU gives about 0.6


def test_cuda_eval_and_tag_agree_with_the_cpu(trained_model):
    reports = []
    for device in ("cpu", "cuda"):
        result = run_cli("eval", DATA / "test.txt", "-m", trained_model, "--json",
                         "--device", device)
        assert result.exit_code == 0, result.output
        reports.append(json.loads(result.stdout))
    assert reports[0]["f1"] == pytest.approx(reports[1]["f1"], abs=0.005)

    outputs = []
    for device in ("cpu", "cuda"):
        result = run_cli("tag", "-m", trained_model, "--input", "conll", "--device", device,
                         input=(DATA / "test.txt").read_text(encoding="utf-8"))
        assert result.exit_code == 0, result.output
        outputs.append(result.stdout.splitlines())
    cpu, cuda = outputs
    assert len(cpu) == len(cuda)
    # float sums run in another order on the GPU: a near-tie may flip, nothing more
    same = sum(a == b for a, b in zip(cpu, cuda))
    assert same >= 0.995 * len(cpu)


def test_cuda_model_pieces_match_the_cpu(trained_model):
    cpu_tagger, _ = load_model(str(trained_model), "cpu")
    cuda_tagger, _ = load_model(str(trained_model), "cuda")
    sentences = read_tagged(str(DATA / "test.txt")).sentences[:40]
    tokens = [s.tokens for s in sentences]
    contexts = context_ids([s.document for s in sentences])
    indices = list(range(len(tokens)))
    results = []
    for tagger in (cpu_tagger, cuda_tagger):
        tagger.model.eval()
        batch = tagger.encoder.batch(tokens, indices, contexts=contexts).to(tagger.device)
        with torch.inference_mode():
            emissions = tagger.model.emissions(batch)
            scores = constrained_scores(tagger.model.crf, *tagger.allowed)
            paths = viterbi(emissions, batch.mask, scores)
            log_z = forward_backward(emissions, batch.mask, scores)[2]
        results.append((emissions.cpu(), paths.cpu(), log_z.cpu()))
    (e_cpu, p_cpu, z_cpu), (e_gpu, p_gpu, z_gpu) = results
    # cuDNN runs the LSTMs in TF32 (10-bit mantissa): equal to about 1e-3, not 1e-6
    assert torch.allclose(e_cpu, e_gpu, rtol=1e-3, atol=1e-2)
    assert torch.allclose(z_cpu, z_gpu, rtol=1e-3, atol=1e-2)
    assert (p_cpu == p_gpu).float().mean() > 0.995


def test_cuda_tagging_of_raw_text(trained_model):
    text = "Peter Blackburn visited Paris .\nEU rejects German call .\n"
    outputs = [run_cli("tag", "-m", trained_model, "--device", device, input=text)
               for device in ("cpu", "cuda")]
    assert all(result.exit_code == 0 for result in outputs), outputs[1].output
    assert outputs[0].stdout == outputs[1].stdout
