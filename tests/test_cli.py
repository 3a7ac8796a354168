"""The stage interface on the command line: every command declares its arguments, NAME=PATH everywhere, clear
errors for missing inputs, and only the chosen stage is imported."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from symzoo.cli import COMMANDS, main, parser


@pytest.mark.parametrize("name", list(COMMANDS))
def test_every_command_declares_its_arguments(name, capsys):
    with pytest.raises(SystemExit) as done:
        main([name, "--help"])
    assert done.value.code == 0
    assert name in capsys.readouterr().out


def test_the_whole_parser_builds_with_every_command():
    subs = next(a for a in parser()._actions if a.dest == "command")
    assert set(subs.choices) == set(COMMANDS)


def test_a_repeated_input_is_name_equals_path(capsys):
    with pytest.raises(SystemExit) as done:
        main(["orbit", "--options", "{}", "--zoo", "z", "--data", "d", "--medoid", "m", "--out", "o", "--model", "x"])
    assert done.value.code == 2
    assert "expected NAME=PATH, not 'x'" in capsys.readouterr().err


def test_a_second_model_where_one_is_taken_is_an_error(tmp_path, capsys):
    args = ["fidelity", "--zoo", str(tmp_path), "--data", "d.npz", "--out", str(tmp_path / "f.parquet")]
    assert main([*args, "--model", "ae_a=a.pt", "ae_b=b.pt"]) == 1
    assert "--model takes one NAME=PATH here, not 2" in capsys.readouterr().err


def test_the_medoid_method_without_its_record_is_an_error_naming_the_flag(tmp_path, capsys):
    args = ["endpoints", "--method", "medoid", "--zoo", str(tmp_path), "--pairs", "p.parquet"]
    assert main([*args, "--out", str(tmp_path / "e.npy")]) == 1
    assert "method 'medoid' needs the zoo's medoid.json (--medoid)" in capsys.readouterr().err
    assert not (tmp_path / "e.npy").exists()


def test_another_section_s_options_are_validated_and_default_to_the_schema(capsys):
    args = ["medoid", "--zoo", "z", "--data", "d", "--out", "o"]
    parsed = parser(args).parse_args(args)
    assert parsed.fidelity_options == {"networks": 500, "images": 1000, "seed": 0, "train_pool": 5000}
    with pytest.raises(SystemExit):
        main([*args, "--fidelity-options", json.dumps({"networks": 1})])
    assert "--fidelity-options: key 'networks'" in capsys.readouterr().err


def test_a_command_imports_only_its_own_stage():
    code = (
        "import sys; from symzoo.cli import parser; parser(['pairs', '--help'][:1]);"
        "print(sorted(m for m in sys.modules if m.startswith('symzoo.stages.')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['symzoo.stages.common', 'symzoo.stages.pairs']"
