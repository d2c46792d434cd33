"""ORGAN's chemistry objectives: a SMILES line's property as a reward in [0, 1].

`SmilesObjective(name, vocab)` is the `score` of the text task's `Objective`: it decodes G's token
ids to SMILES, parses them with RDKit and maps the property (`gankit.metrics.molecules`:
qed, logp, sa) onto [0, 1]; an invalid molecule scores 0, as in ORGAN. Rollouts complete the
same prefixes into many of the same lines, so values are memoised by string.
"""

from __future__ import annotations

import torch
from torch import Tensor

from gankit.data.molecules import mol
from gankit.data.text import Vocab
from gankit.metrics.molecules import molecule_property, property_reward

CACHE_MAX = 200_000  # memoised lines (a few MB); cleared when full


class SmilesObjective:
    """(N, T) token ids -> (N,) float32 rewards in [0, 1], on the ids' device."""

    def __init__(self, name: str, vocab: Vocab):
        self.name, self.vocab, self.cache = name, vocab, {}
        molecule_property(mol("CCO"), name)  # fails now (a missing sascorer), not at the first adversarial step

    def value(self, smiles: str) -> float:
        if smiles not in self.cache:
            if len(self.cache) >= CACHE_MAX:
                self.cache.clear()
            m = mol(smiles)
            self.cache[smiles] = property_reward(None if m is None else molecule_property(m, self.name), self.name)
        return self.cache[smiles]

    def __call__(self, ids: Tensor) -> Tensor:
        lines = [self.vocab.decode(row) for row in ids.cpu()]
        return torch.tensor([self.value(s) for s in lines], dtype=torch.float32, device=ids.device)
