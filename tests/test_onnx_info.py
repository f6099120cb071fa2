"""nerlstm info on an exported .onnx file: what it tells of a .pt file, read without torch."""

import json
import subprocess
import sys

import pytest
from conftest import run_cli

pytest.importorskip("onnxruntime", reason="the onnx extra (pip install 'nerlstm[onnx]')")
pytest.importorskip("onnx", reason="the onnx extra (pip install 'nerlstm[onnx]')")

SAME = ("train_scheme", "tags", "entity_types", "words", "characters", "parameters", "train",
        "dev", "best_epoch", "best_dev", "epochs_run", "reading", "nerlstm_version",
        "torch_version")


@pytest.fixture(scope="module")
def exported(trained_model, tmp_path_factory):
    folder = tmp_path_factory.mktemp("info")
    files = {"float32": folder / "model.onnx", "int8": folder / "int8.onnx"}
    assert run_cli("export", "-m", trained_model, "-o", files["float32"]).exit_code == 0
    assert run_cli("export", "-m", trained_model, "-o", files["int8"], "--quantize",
                   "int8").exit_code == 0
    return files


def facts_of(model) -> dict:
    result = run_cli("info", "-m", model, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_info_of_an_onnx_file_tells_what_the_pt_file_tells(trained_model, exported):
    torch_facts = facts_of(trained_model)
    assert torch_facts["format"] == "torch"
    for kind, path in exported.items():
        facts = facts_of(path)
        assert {key: facts[key] for key in SAME} == {key: torch_facts[key] for key in SAME}
        assert facts["format"] == "onnx" and facts["exported_from"] == trained_model.name
        assert facts["quantized"] == (None if kind == "float32" else "int8")
        assert facts["file_bytes"] == path.stat().st_size
        assert facts["config"]["hidden"] == torch_facts["config"]["hidden"]
    text = run_cli("info", "-m", exported["int8"]).stdout
    assert "ONNX, int8 weights, exported from" in text and "best epoch" in text
    recipe = run_cli("info", "-m", exported["float32"], "--recipe").stdout
    assert "hidden = 32" in recipe and f'train = "{torch_facts["train"]["path"]}"' in recipe


def test_info_of_an_onnx_file_imports_no_torch(exported):
    code = ("import sys\nfrom nerlstm.cli import main\n"
            "sys.argv = ['nerlstm', 'info', '-m', sys.argv[1]]\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "print('torch imported:', 'torch' in sys.modules, file=sys.stderr)\n")
    done = subprocess.run([sys.executable, "-c", code, str(exported["int8"])],
                          capture_output=True, text=True, timeout=120)
    assert "ONNX, int8 weights" in done.stdout, done.stderr
    assert done.stderr.strip().splitlines()[-1] == "torch imported: False"


def test_info_of_a_bad_onnx_file_is_one_line(tmp_path):
    fake = tmp_path / "fake.onnx"
    fake.write_bytes(b"not a model at all")
    for path, message in ((fake, "not an ONNX model, or a damaged one"),
                          (tmp_path / "absent.onnx", "no such model file")):
        result = run_cli("info", "-m", path)
        assert result.exit_code == 1 and result.stderr.startswith("error: ")
        assert message in result.stderr and "Traceback" not in result.output
