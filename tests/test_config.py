"""Config loading: defaults, overrides, and one-line errors naming the key."""

from pathlib import Path

import pytest

from fedfleet.config import RunConfig, dump_config, load_config, parse_overrides, parse_yaml
from fedfleet.errors import ConfigError

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def test_default_config_file_matches_the_documented_main_job():
    config = load_config(CONFIGS / "default.yaml")
    assert (config.data.dataset, config.data.num_clients, config.model.name) == ("fashion_mnist", 100, "cnn")
    assert config.train.clients_per_round == 10


def test_overrides_are_typed_as_yaml_scalars():
    config = load_config({}, ["train.lr=0.1", "data.num_clients=20", "train.deadline_s=null", "strategy.name=fedprox"])
    assert config.train.lr == 0.1 and isinstance(config.train.lr, float)
    assert config.data.num_clients == 20
    assert config.train.deadline_s is None
    assert config.strategy.name == "fedprox"


def test_overrides_win_over_the_file_and_keep_its_other_keys(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  lr: 0.3\n  rounds: 7\n")
    config = load_config(path, ["train.lr=0.2"])
    assert (config.train.lr, config.train.rounds) == (0.2, 7)


def test_dumped_config_loads_back_to_the_same_config(tmp_path):
    config = load_config({}, ["seed=5", "fleet.profile=uniform"])
    path = tmp_path / "config.yaml"
    path.write_text(dump_config(config))
    assert load_config(path) == config


@pytest.mark.parametrize(
    ("source", "overrides", "message"),
    [
        ({"train": {"lr_rate": 0.1}}, [], "unknown config key 'train.lr_rate'"),
        ({"trian": {}}, [], "unknown config key 'trian'"),
        ({}, ["train.lr=-1"], "config key 'train.lr'"),
        ({}, ["data.partition=zipf"], "config key 'data.partition'"),
        ({}, ["train.rounds=many"], "config key 'train.rounds'"),
        ({"data": {"num_clients": 4}, "train": {"clients_per_round": 5}}, [], "exceeds data.num_clients"),
        ({}, ["train.lr"], "is not KEY=VALUE"),
    ],
)
def test_bad_configs_are_one_line_errors_naming_the_key(source, overrides, message):
    with pytest.raises(ConfigError) as error:
        load_config(source, overrides)
    assert message in str(error.value)
    assert "\n" not in str(error.value)


def test_missing_and_malformed_files_are_named(tmp_path):
    with pytest.raises(ConfigError, match=r"nope\.yaml not found"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: [unclosed\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml is not valid YAML"):
        load_config(bad)
    listing = tmp_path / "list.yaml"
    listing.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="must hold a mapping"):
        load_config(listing)


def test_nested_overrides_merge():
    assert parse_overrides(["a.b=1", "a.c=x", "d=2.5"]) == {"a": {"b": 1, "c": "x"}, "d": 2.5}


def test_every_section_has_defaults():
    assert RunConfig() == load_config({})


def test_exponent_floats_without_a_dot_are_numbers():
    overrides = parse_overrides(["train.lr=1e-3", "fleet.base_speed=2E2"])
    assert overrides == {"train": {"lr": 1e-3}, "fleet": {"base_speed": 200.0}}
    assert parse_yaml("samples: 6.0e6\nname: 1e3x\n") == {"samples": 6.0e6, "name": "1e3x"}


def test_yaml_tags_that_build_objects_are_refused(tmp_path):
    path = tmp_path / "evil.yaml"
    path.write_text("name: !!python/object/apply:os.system ['touch pwned']\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(path)
    assert not (tmp_path / "pwned").exists() and not Path("pwned").exists()


@pytest.mark.parametrize(("override", "message"), [
    ("train.rounds=true", "'train.rounds' must be a whole number written in digits, e.g. 10 (got true)"),
    ("train.rounds=2.5", "'train.rounds' must be a whole number written in digits, e.g. 10 (got 2.5)"),
    ("train.rounds=1e12", "'train.rounds' must be a whole number: write 1000000000000, not 1000000000000.0"),
    ("train.rounds='7'", "'train.rounds' must be a whole number written in digits, e.g. 10 (got '7')"),
    ("seed=false", "'seed' must be a whole number"),
])
def test_integer_keys_are_strict(override, message):
    with pytest.raises(ConfigError) as info:
        load_config({}, [override])
    assert message in str(info.value)


def test_a_float_key_still_takes_an_integer():
    assert load_config({}, ["train.lr=1"]).train.lr == 1.0


def test_a_rule_across_fields_names_them_without_dumping_the_input():
    with pytest.raises(ConfigError) as info:
        load_config({"data": {"num_clients": 3}, "train": {"clients_per_round": 5}})
    assert str(info.value) == "invalid config: train.clients_per_round (5) exceeds data.num_clients (3)"


def test_an_unknown_nested_key_lists_the_keys_allowed_there(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("train: {roundz: 3}\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert message.startswith(f"config file {path}: unknown config key 'train.roundz'; check its spelling; ")
    assert "keys allowed here: mode, rounds, clients_per_round" in message
