"""Local mode: no CI variables, no token: the report and its images land in a folder, exit 0."""

import subprocess
from pathlib import Path

from repo_helpers import example_repo, run_cli


def test_local_run_trains_and_writes_a_report_comparing_with_main(tmp_path: Path):
    repo = example_repo(tmp_path)
    out = run_cli(repo, "--run", "python train.py", "--metrics", "metrics.json", "--params", "params.yaml",
                  "--plots", "confusion_matrix.png")
    assert out.returncode == 0, out.stderr
    assert "trained on" in out.stdout  # training output streamed through
    report = (repo / "cml-report" / "report.md").read_text()
    assert "| Metric | main | head | Change |" in report
    assert "| **model.max_depth** | 6 | **2** |" in report  # changed params first, bold
    # an image plot that changed: main's and head's side by side, both copied into the report folder
    assert ("| main | head |\n|---|---|\n| ![confusion_matrix.png (main)](images/baselines/main/confusion_matrix.png) | "
            "![confusion_matrix.png](images/confusion_matrix.png) |") in report
    assert (repo / "cml-report" / "images" / "confusion_matrix.png").read_bytes() == (repo / "confusion_matrix.png").read_bytes()
    main_png = subprocess.run(["git", "show", "main:confusion_matrix.png"], cwd=repo, capture_output=True, check=True).stdout
    assert (repo / "cml-report" / "images" / "baselines" / "main" / "confusion_matrix.png").read_bytes() == main_png
    assert main_png != (repo / "confusion_matrix.png").read_bytes()
    assert "cml-report/report.md" in out.stdout


def test_training_failure_still_writes_report_with_log_tail_and_exits_1(tmp_path: Path):
    repo = example_repo(tmp_path, change_params=False)
    out = run_cli(repo, "--run", "for i in $(seq 1 80); do echo step $i; done; exit 7", "--metrics", "metrics.json")
    assert out.returncode == 1
    report = (repo / "cml-report" / "report.md").read_text()
    assert "exited with code 7" in report and "step 80" in report and "step 31" in report and "step 30\n" not in report
    assert out.stderr.strip().splitlines()[-1] == "cml-action: error: training failed with exit code 7"


def test_bad_inputs_are_one_line_errors_with_exit_2(tmp_path: Path):
    repo = example_repo(tmp_path, change_params=False)
    (repo / "broken.json").write_text('{"a": 1,,}')
    cases = {
        ("--metrics", "missing.json"): "missing.json: file not found",
        ("--metrics", "broken.json"): "broken.json: invalid JSON at line 1 column 9",
        ("--target", "somewhere"): "unknown target 'somewhere'",
        ("--update", "maybe"): "--update: expected true or false",
    }
    for args, expected in cases.items():
        out = run_cli(repo, "report", *args)
        assert out.returncode == 2, (args, out.stderr)
        assert "Traceback" not in out.stderr
        errors = [line for line in out.stderr.splitlines() if line.startswith("cml-action: error")]
        assert len(errors) == 1 and expected in errors[0], (args, out.stderr)


def test_unknown_target_is_refused_before_training(tmp_path: Path):
    repo = example_repo(tmp_path, change_params=False)
    out = run_cli(repo, "--run", "touch trained.flag", "--target", "nowhere")
    assert out.returncode == 2 and not (repo / "trained.flag").exists()


def test_problems_found_after_training_keep_the_report_and_exit_2(tmp_path: Path):
    repo = example_repo(tmp_path)
    (repo / "logs").mkdir()
    out = run_cli(repo, "--run", "python train.py", "--metrics", "metrics.json", "--tensorboard", "logs",
                  "--notebook-diff", "false")
    assert out.returncode == 2
    assert "no TensorBoard event files" in out.stderr and "Traceback" not in out.stderr
    report = (repo / "cml-report" / "report.md").read_text()
    assert "| accuracy |" in report and "no TensorBoard event files" in report
