"""The README's Python API example runs as written."""

import re
import shutil
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_readme_python_example_runs(tmp_path, monkeypatch):
    readme = (REPO / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, flags=re.DOTALL)
    assert len(blocks) == 1
    assert len(blocks[0].strip().splitlines()) <= 10
    (tmp_path / "configs").mkdir()
    shutil.copy(REPO / "configs" / "digits.yaml", tmp_path / "configs" / "digits.yaml")
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(blocks[0], "README.md", "exec"), namespace)
    assert len(namespace["result"].history) == 3
    assert (tmp_path / "runs" / "api-demo" / "report.html").exists()
