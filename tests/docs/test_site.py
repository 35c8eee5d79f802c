"""The documentation site builds with `mkdocs build --strict` (a broken link or a page missing from the build
fails), and its generated reference pages cover every config key and every command-line option."""

from __future__ import annotations

import argparse
import glob
import os
import re
import subprocess
import sys
from pathlib import Path

from dppo.cli import build_parser
from dppo.docs.reference import cli_reference, config_kinds, config_reference, config_rows
from shared.settings import ALGORITHMS

ROOT = Path(__file__).resolve().parents[2]


def test_every_config_key_of_every_kind_has_a_type_a_default_and_a_meaning():
    undocumented = sorted({key for _, _, cls, model in config_kinds() for key, _, _, text in
                           config_rows(cls, model=model) if not text})
    assert not undocumented, ("config keys without a meaning (give the field doc=... or add the key to "
                              f"shared/settings/glossary.py): {undocumented}")


def test_config_reference_lists_each_algorithm_and_its_own_keys():
    page = config_reference()
    for algorithm in ALGORITHMS.values():
        if algorithm.name != "ppo":  # DPPO and Gaussian PPO have a section each, checked below
            assert f"## Fine-tuning: {algorithm.title}\n" in page, algorithm.name
    for title, key in (("Fine-tuning: DQL", "train.eta"), ("Fine-tuning: DIPO", "train.action_lr"),
                       ("Pre-training", "train.epoch_start_ema"), ("Fine-tuning: DPPO", "model.gamma_denoising"),
                       ("Evaluation: Gaussian policy", "model.network.std_max")):
        section = page[page.index(f"## {title}"):]
        section = section[:section.find("\n## ", 1) if "\n## " in section[1:] else len(section)]
        assert f"| `{key}` |" in section, (title, key)


def test_cli_reference_lists_every_subcommand_and_option():
    page = cli_reference()
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    for name, parser in sub.choices.items():
        assert f"## dppo {name}" in page
        for action in parser._actions:
            for flag in action.option_strings:
                if flag not in ("-h", "--help"):
                    assert f"`{flag}`" in page, (name, flag)


def test_mkdocs_build_strict_passes(tmp_path):
    res = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(tmp_path / "site")],
                         cwd=ROOT, capture_output=True, text=True, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert res.returncode == 0, res.stdout + res.stderr
    config_page = (tmp_path / "site" / "reference" / "config" / "index.html").read_text()
    assert "train.n_train_itr" in config_page and "generated: config reference" not in config_page
    assert "dppo finetune" in (tmp_path / "site" / "reference" / "cli" / "index.html").read_text()


# a repository path as the docs write it: a top-level folder of this project, then a file with an extension
# (`core_*` stands for both twins; paths with {a,b} or <name> placeholders are patterns, not checked)
_REPO_PATH = re.compile(r"(?<![\w/.-])((?:core_torch|core_tf|core_\*|shared|dppo|parity_tests|tests|scripts|"
                        r"configs|data|benchmarks|docs)/[\w*./-]+?\.(?:py|yaml|npz|sh|md|json|png|txt))(?![\w{<])")


def test_every_repository_path_the_docs_name_exists():
    pages = [ROOT / "README.md", ROOT / "data" / "README.md", ROOT / "scripts" / "golden" / "README.md",
             *sorted((ROOT / "docs").rglob("*.md"))]
    missing = [f"{page.relative_to(ROOT)}:{i}: {path}" for page in pages
               for i, line in enumerate(page.read_text().splitlines(), 1)
               for path in _REPO_PATH.findall(line) if not glob.glob(str(ROOT / path))]
    assert not missing, "paths named in the docs that do not exist:\n" + "\n".join(missing)
