"""The console script's command table is built once per process, however often ``main`` runs."""

import pytest

from fedfleet.cli import main as cli


def test_calling_main_again_registers_no_command_twice(capsys):
    for _ in range(3):
        with pytest.raises(SystemExit):
            cli.main(["--help"])
    capsys.readouterr()
    names = [command.name or command.callback.__name__ for command in cli.app.registered_commands]
    groups = [group.name for group in cli.app.registered_groups]
    assert len(names) == len(set(names)) and len(groups) == len(set(groups))
    assert len(groups) >= 3  # data, privacy, traffic, ...
