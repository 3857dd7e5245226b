"""action.yml, README and the CLI all come from one table; these tests stop them drifting apart."""

import subprocess
import sys
from pathlib import Path

import yaml

from cml_action.cli import build_parser
from cml_action.options import OPTIONS, OUTPUTS

ROOT = Path(__file__).resolve().parent.parent


def test_action_yml_is_generated_from_the_options_table():
    sys.path.insert(0, str(ROOT / "scripts"))
    import gen_action_yml

    assert (ROOT / "action.yml").read_text() == gen_action_yml.render(), "run scripts/gen_action_yml.py"
    action = yaml.safe_load((ROOT / "action.yml").read_text())
    assert action["runs"]["using"] == "docker"
    assert set(action["inputs"]) == {"command"} | {o.name for o in OPTIONS}
    assert set(action["outputs"]) == set(OUTPUTS)


def test_readme_documents_every_input_and_output():
    readme = (ROOT / "README.md").read_text()
    missing = [name for name in ["command", *(o.name for o in OPTIONS), *OUTPUTS] if f"`{name}`" not in readme]
    assert not missing, f"README.md does not document: {missing}"


def test_readme_tables_are_generated_from_the_code():
    sys.path.insert(0, str(ROOT / "scripts"))
    import gen_action_yml

    readme = (ROOT / "README.md").read_text()
    assert gen_action_yml.readme_with_table(readme) == readme, "run scripts/gen_action_yml.py"
    assert gen_action_yml.readme_with_clouds(readme) == readme, "run scripts/gen_action_yml.py"
    assert gen_action_yml.CLOUDS_START in readme


def test_every_option_is_a_cli_flag_of_its_commands():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for option in OPTIONS:
        for command in option.commands:
            flags = {s for a in sub.choices[command]._actions for s in a.option_strings}
            assert f"--{option.name}" in flags, (command, option.name)


def test_entrypoint_maps_inputs_to_flags_and_args_win():
    sys.path.insert(0, str(ROOT))
    import entrypoint

    env = {"INPUT_COMMAND": "report", "INPUT_METRICS": "m.json", "INPUT_CLOUD-REGION": "x", "INPUT_TITLE": "", "INPUT_RUN": "python t.py"}
    argv = entrypoint.build_argv(env, ["--title", "T"])
    assert argv == ["report", "--metrics", "m.json", "--title", "T"]  # run and cloud-region do not belong to report
    assert entrypoint.build_argv({}, ["--run", "x"]) == ["run", "--run", "x"]


def test_entrypoint_help_is_fast_and_imports_no_cloud_sdk():
    code = "import sys, runpy; sys.argv=['entrypoint.py','--help']\ntry:\n runpy.run_path('entrypoint.py', run_name='__main__')\nexcept SystemExit: pass\nprint(sorted(m for m in sys.modules if m.split('.')[0] in ('google','azure','boto3','botocore','github','gitlab','pandas','matplotlib','dvc')))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"
