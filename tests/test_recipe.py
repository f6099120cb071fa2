"""Recipes: settings in a TOML file, checked by the same definitions as the options."""

import pytest
from conftest import DATA, TINY, run_cli, write

from nerlstm.config import Config, all_settings


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


def test_print_config_lists_every_setting_with_its_help():
    printed = run_cli("train", "--print-config").stdout
    for name, setting in all_settings().items():
        if setting.default is not None:
            assert f"\n{name} = " in printed, name
            assert f"# {setting.help}\n{name} = " in printed


BAD_VALUES = [
    ("batch_size", "0", "--batch-size", "an integer of at least 1"),
    ("dropout", "1.5", "--dropout", "a number from 0 up to (not including) 1"),
    ("lr", "-1.0", "--lr", "a number of at least 0"),
    ("epochs", "0", "--epochs", "an integer of at least 1"),
    ("threads", "-3", "--threads", "an integer of at least 1"),
    ("momentum", "2", "--momentum", "a number from 0 to 1"),
    ("optimizer", "'rmsprop'", "--optimizer", "expected one of sgd, adam"),
    ("device", "'tpu'", "--device", "expected one of auto, cpu, cuda"),
]


@pytest.mark.parametrize("name, value, flag, expected", BAD_VALUES)
def test_a_recipe_refuses_what_the_option_refuses(tmp_path, name, value, flag, expected):
    recipe = write(tmp_path / "r.toml", f"{name} = {value}\n")
    from_recipe = run_cli("train", "--config", recipe, "--print-config")
    assert from_recipe.exit_code == 2 and from_recipe.output.startswith("error: ")
    assert expected in from_recipe.output and "r.toml" in from_recipe.output
    assert len(from_recipe.output.strip().splitlines()) == 1
    from_option = run_cli("train", "--print-config", flag, value.strip("'"))
    assert from_option.exit_code == 2
    assert expected.replace("expected ", "") in " ".join(from_option.output.split())


@pytest.mark.parametrize("text, fragment", [
    ("hiden = 3\n", "unknown setting hiden (did you mean hidden?)"),
    ("droput = 0.3\n", "did you mean dropout?"),
    ("hidden = 'big'\n", "expected an integer"),
    ("hidden = true\n", "expected an integer"),
    ("dropout = 'half'\n", "expected a number"),
    ("doc_context = 1\n", "expected true or false"),
    ("vocab_from = 'a.txt'\n", "expected a list of strings"),
    ("hidden = \n", "not a valid TOML recipe"),
])
def test_bad_recipes_are_one_error_line(tmp_path, text, fragment):
    recipe = write(tmp_path / "r.toml", text)
    result = run_cli("train", "--config", recipe, "--print-config")
    assert result.exit_code == 2 and result.output.startswith("error: ")
    assert fragment in result.output and "r.toml" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_an_unknown_setting_lists_no_names_it_is_not_close_to(tmp_path):
    result = run_cli("train", "--config", write(tmp_path / "r.toml", "zzz = 1\n"),
                     "--print-config")
    assert result.exit_code == 2 and "did you mean" not in result.output
    assert "hidden" not in result.output


def test_a_recipe_holds_the_data_and_trains_without_arguments(tmp_path):
    recipe = write(tmp_path / "r.toml", f'train = "{DATA / "train.txt"}"\n'
                   f'dev = "{DATA / "dev.txt"}"\ntoken_column = 0\ntag_column = -1\n'
                   'epochs = 1\nhidden = 8\nword_dim = 8\nchar_hidden = 4\nchar_dim = 4\n'
                   'threads = 1\n')
    model = tmp_path / "m.pt"
    result = run_cli("train", "--config", recipe, "-m", model)
    assert result.exit_code == 0, result.output
    assert model.is_file()


def test_a_model_repeats_as_a_recipe(trained_model, tmp_path):
    recipe = run_cli("info", "-m", trained_model, "--recipe").stdout
    path = write(tmp_path / "model.toml", recipe)
    effective = run_cli("train", "--config", path, "--print-config").stdout
    assert "hidden = 32\n" in effective and "seed = 3\n" in effective
    assert f'train = "{DATA / "train.txt"}"' in effective
    assert f'dev = "{DATA / "dev.txt"}"' in effective
    assert 'encoding = "utf-8"' in effective and "tag_column = -1" in effective


def test_info_recipe_repeats_the_run_exactly(tmp_path):
    first = tmp_path / "first.pt"
    args = [DATA / "train.txt", "--dev", DATA / "dev.txt", *TINY, "--epochs", "2"]
    assert run_cli("train", *args, "-m", first).exit_code == 0
    recipe = write(tmp_path / "again.toml", run_cli("info", "-m", first, "--recipe").stdout)
    again = tmp_path / "again.pt"
    result = run_cli("train", "--config", recipe, "-m", again)
    assert result.exit_code == 0, result.output
    import torch

    weights = [torch.load(path, weights_only=True)["state_dict"] for path in (first, again)]
    assert all(torch.equal(weights[0][key], weights[1][key]) for key in weights[0])
