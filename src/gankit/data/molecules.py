"""Molecules as SMILES strings, through RDKit: parse, validate, canonicalise.

RDKit (the `rdkit` wheel) is imported on first use, with one line when it is missing; its
parser's complaints about each invalid string are silenced (an invalid sample is data, not news).
"""

from __future__ import annotations

from functools import lru_cache

from gankit.errors import GankitError


@lru_cache(maxsize=1)
def chem():
    """RDKit's Chem module, its parser's logging off."""
    try:
        from rdkit import Chem, RDLogger
    except ImportError:
        raise GankitError("molecules need RDKit: pip install rdkit (make installs it)") from None
    RDLogger.DisableLog("rdApp.*")
    return Chem


def mol(smiles: str):
    """The RDKit molecule of `smiles`, or None when it does not parse (or is empty)."""
    if not smiles:
        return None
    m = chem().MolFromSmiles(smiles)
    return m if m is not None and m.GetNumAtoms() > 0 else None


def is_valid(smiles: str) -> bool:
    return mol(smiles) is not None


def canonical(smiles: str) -> str | None:
    """RDKit's canonical SMILES, or None for an invalid string."""
    m = mol(smiles)
    return None if m is None else chem().MolToSmiles(m)
