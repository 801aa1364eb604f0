"""The install story: one minimum transformers version everywhere, and the README's Python examples run as written."""

import re

import pytest
import tomllib
from conftest import REPOSITORY

from genre_vit.model_folder import MIN_TRANSFORMERS_VERSION


def test_minimum_transformers_version_is_stated_once_and_everywhere():
    requirements = (REPOSITORY / "requirements.txt").read_text()
    assert re.search(rf"^transformers>={re.escape(MIN_TRANSFORMERS_VERSION)}\b", requirements, re.MULTILINE)
    project = tomllib.loads((REPOSITORY / "pyproject.toml").read_text())["project"]
    assert f"transformers>={MIN_TRANSFORMERS_VERSION}" in project["dependencies"]
    card = REPOSITORY / "checkpoints" / "genre-vit-gtzan" / "README.md"
    if card.exists():
        assert f"transformers>={MIN_TRANSFORMERS_VERSION}" in card.read_text()


def test_space_install_does_not_need_the_package_folder():
    """A Space installs requirements.txt before the repository is copied in, so it must not name the package
    itself (`-e .`); the README's install command adds `-e .` for everyone else."""
    requirements = (REPOSITORY / "requirements.txt").read_text().splitlines()
    assert not any(line.strip().startswith(("-e", ".")) for line in requirements)
    readme = (REPOSITORY / "README.md").read_text()
    assert "pip install -r requirements.txt -e .\n" in readme
    assert "pip install -r requirements.txt -e ." in (REPOSITORY / ".ci" / "run").read_text()


def readme_python_examples() -> list[str]:
    readme = (REPOSITORY / "README.md").read_text()
    return re.findall(r"```python\n(.*?)```", readme, re.DOTALL)


def test_readme_has_python_examples():
    assert len(readme_python_examples()) >= 2


@pytest.mark.slow
@pytest.mark.parametrize("index", range(len(readme_python_examples())))
def test_readme_python_example_runs_as_written(index, tmp_path, monkeypatch, tiny_model, feature_extractor):
    """Each ```python block of the README, run as written in a folder that holds what it names: `song.mp3` and a
    model at `checkpoints/genre-vit-gtzan` (the bundled float16 checkpoint where it exists, else the tiny model saved
    in float16 the same way)."""
    import shutil

    import soundfile
    import torch

    from genre_vit.testing import synth_music

    example = readme_python_examples()[index]
    if "pipeline(" in example and shutil.which("ffmpeg") is None:
        pytest.skip("the stock pipeline decodes files with ffmpeg")
    soundfile.write(tmp_path / "song.mp3", synth_music(12.0, seed=3), 22050)
    model_dir = tmp_path / "checkpoints" / "genre-vit-gtzan"
    bundled = REPOSITORY / "checkpoints" / "genre-vit-gtzan"
    if (bundled / "config.json").exists():
        model_dir.parent.mkdir()
        model_dir.symlink_to(bundled)
    else:
        tiny_model.to(torch.float16).save_pretrained(model_dir)
        tiny_model.to(torch.float32)
        feature_extractor.save_pretrained(model_dir)
    monkeypatch.chdir(tmp_path)
    exec(compile(example, f"README.md python example {index + 1}", "exec"), {"__name__": "__readme__"})


def test_importing_the_library_loads_nothing_of_the_training_workbench():
    import subprocess
    import sys

    code = (
        "import sys, genre_vit; "
        "print(sorted(m for m in sys.modules if m.startswith('genre_vit.training')), "
        "sorted(m for m in ('datasets', 'sklearn', 'gradio') if m in sys.modules))"
    )
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert completed.stdout.strip() == "[] []"


def package_imports() -> dict[str, set[str]]:
    """Module -> the package modules it imports (at any depth of its code), from the source."""
    import ast

    package = REPOSITORY / "genre_vit"
    imports = {}
    for path in package.rglob("*.py"):
        module = ".".join(path.relative_to(REPOSITORY).with_suffix("").parts).removesuffix(".__init__")
        names = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = module.split(".")[: len(module.split(".")) - node.level + (path.name == "__init__.py")]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                if target.startswith("genre_vit"):
                    names.add(target)
            elif isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names if alias.name.startswith("genre_vit"))
        imports[module] = names
    return imports


def test_the_library_never_imports_the_workbench_and_there_are_no_import_cycles():
    imports = package_imports()
    for module, targets in imports.items():
        if not module.startswith("genre_vit.training"):
            assert not any(t.startswith("genre_vit.training") for t in targets), (module, targets)

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        for target in imports.get(start, ()):
            if target == goal or (target not in seen and reaches(target, goal, seen | {target})):
                return True
        return False

    cycles = [module for module in imports if reaches(module, module, {module})]
    assert cycles == []
