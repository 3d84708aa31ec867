"""The import contracts in pyproject.toml ([tool.importlinter]), checked by import-linter over
every import statement of the project's code, those inside functions too."""

import tomllib
from pathlib import Path

from importlinter.cli import lint_imports

ROOT = Path(__file__).resolve().parent.parent


def test_the_contracts_are_configured():
    # An empty configuration would keep every contract and pass the test below.
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    names = [contract["name"] for contract in contracts["contracts"]]
    assert len(names) >= 6
    assert any("core" in name for name in names)


def test_every_import_contract_is_kept(monkeypatch):
    monkeypatch.chdir(ROOT)
    assert lint_imports(no_cache=True, no_logo=True) == 0
