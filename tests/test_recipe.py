import pytest
from conftest import run_cli, write

from nerlstm.config import Config


def test_print_config_round_trips_and_command_line_overrides(tmp_path):
    recipe = write(tmp_path / "r.toml", 'hidden = 64\nlr = 1\nencoding = "latin-1"\n')
    first = run_cli("train", "--config", recipe, "--print-config", "--hidden", "32")
    assert first.exit_code == 0, first.output
    assert "hidden = 32\n" in first.stdout and "lr = 1.0\n" in first.stdout
    assert 'encoding = "latin-1"' in first.stdout
    again = write(tmp_path / "again.toml", first.stdout)
    second = run_cli("train", "--config", again, "--print-config")
    assert second.stdout == first.stdout
    defaults = run_cli("train", "--print-config").stdout
    assert f"patience = {Config.patience}\n" in defaults


@pytest.mark.parametrize("text, fragment", [
    ("hiden = 3\n", "unknown option hiden"),
    ("hidden = 'big'\n", "expected an integer"),
    ("hidden = true\n", "expected an integer"),
    ("dropout = 'half'\n", "expected a number"),
    ("doc_context = 1\n", "expected true or false"),
    ("optimizer = 'rmsprop'\n", "expected one of sgd, adam"),
    ("hidden = \n", "not a valid TOML recipe"),
])
def test_bad_recipes_are_one_error_line(tmp_path, text, fragment):
    recipe = write(tmp_path / "r.toml", text)
    result = run_cli("train", "--config", recipe, "--print-config")
    assert result.exit_code == 1 and result.output.startswith("error: ")
    assert fragment in result.output and "r.toml" in result.output


def test_a_model_repeats_as_a_recipe(trained_model, tmp_path):
    recipe = run_cli("info", "-m", trained_model, "--recipe").stdout
    path = write(tmp_path / "model.toml", recipe)
    effective = run_cli("train", "--config", path, "--print-config").stdout
    assert "hidden = 32\n" in effective and "seed = 3\n" in effective
