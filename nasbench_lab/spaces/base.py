"""The search-space contract every space implements.

An architecture is a tuple of integer *genes*, one per decision level. A space describes its
decisions as a tree: ``level_options(prefix)`` lists the valid genes at level ``len(prefix)``
given the earlier ones. That single description serves constrained spaces (pooling: where the
downsamplings go), product spaces (NB-Macro, NB-201), uniform sampling, enumeration, and the
MCTS default tree (levels = layers/edges, branches = ops).
"""

from __future__ import annotations

import itertools
import math
import numbers
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np

from nasbench_lab import validation as V

if TYPE_CHECKING:  # pragma: no cover
    import networkx as nx
    import torch.nn as nn


#: longest architecture text :meth:`SearchSpace.parse` reads (the longest canonical strings, DARTS
#: genotypes, are about 450 characters); checked before any parsing, so every grammar runs on a
#: bounded input
MAX_ARCH_CHARS = 4000


@dataclass(frozen=True, order=True)
class Arch:
    """An immutable, hashable architecture of one space.

    ``genes`` are the decisions; ``text`` is the space's canonical string (``str(arch)``), kept
    so that an architecture prints without its space at hand. Equality and hashing use the space
    name and the genes only.
    """

    space: str
    genes: tuple[int, ...]
    text: str = field(default="", compare=False, repr=False)

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return f"Arch({self.space!r}, {self.text!r})"


class SearchSpace(ABC):
    """Base class of every search space (see DESIGN.md, "SearchSpace")."""

    #: registry name, e.g. ``"pooling"``
    name: str = ""
    #: one line for listings
    description: str = ""
    #: a valid canonical string, shown in error messages
    example: str = ""
    #: the standard input the models are built for (channels, height, width)
    input_shape: tuple[int, int, int] = (3, 32, 32)
    #: what a network of the space predicts (a :mod:`nasbench_lab.tasks` name) and the dataset a run
    #: uses when none is named
    task: str = "classification"
    default_dataset: str = "digits"
    #: the largest size for which ``enumerate()`` is allowed
    max_enumerable: int = 100_000

    # ----------------------------------------------------------------- the decision tree
    @property
    @abstractmethod
    def num_levels(self) -> int:
        """Number of decisions (genes) in an architecture."""

    @abstractmethod
    def level_options(self, prefix: Sequence[int]) -> Sequence[int]:
        """Valid genes at level ``len(prefix)`` given the genes chosen before it."""

    def level_name(self, level: int) -> str:
        """Human label of a decision level (a layer, an edge)."""
        return f"layer {level + 1}"

    def option_label(self, level: int, gene: int) -> str:
        """Human label of one gene at one level (an op name)."""
        return str(gene)

    @abstractmethod
    def format(self, genes: Sequence[int]) -> str:
        """Canonical string of valid genes."""

    @abstractmethod
    def _parse_genes(self, text: str) -> tuple[int, ...]:
        """Genes of a canonical string; raise ValueError (any message) when malformed."""

    # ----------------------------------------------------------------- architectures
    def arch(self, genes: Sequence[int]) -> Arch:
        """Build a validated architecture from genes (integers; ``4.7`` or ``True`` is an error,
        never truncated)."""
        genes = self.integer_genes(genes)
        self.validate_genes(genes)
        return Arch(self.name, genes, self.format(genes))

    def integer_genes(self, genes: Any) -> tuple[int, ...]:
        """``genes`` as a tuple of ints after the type checks of :meth:`arch` (no range check)."""
        if isinstance(genes, str | bytes) or not isinstance(genes, Sequence | np.ndarray):
            raise self.error(f"expected a sequence of {self.num_levels} integer genes, got {V.shorten(genes)}")
        if len(genes) > 4 * self.num_levels + 16:
            raise self.error(f"expected {self.num_levels} decisions, got {len(genes)}")
        bad = [(i, g) for i, g in enumerate(genes)
               if not isinstance(g, numbers.Integral) or isinstance(g, bool | np.bool_)]
        if bad:
            i, g = bad[0]
            raise self.error(f"gene {i} is {V.shorten(g)}; genes are integers")
        return tuple(int(g) for g in genes)

    def validate_genes(self, genes: Sequence[int]) -> None:
        if len(genes) != self.num_levels:
            raise self.error(f"expected {self.num_levels} decisions, got {len(genes)}")
        for level, g in enumerate(genes):
            options = self.level_options(genes[:level])
            if g not in options:
                raise self.error(
                    f"{self.level_name(level)}: {V.shorten(g)} is not a valid choice here (valid: {list(options)})"
                )

    def error(self, what: str) -> ValueError:
        """A ValueError naming this space and showing a valid example."""
        return ValueError(f"{self.name}: {what}. Example of a valid architecture: {self.example!r}")

    def parse(self, text: str | Arch | Sequence[int]) -> Arch:
        """Architecture from its canonical string (an Arch or a gene sequence also accepted)."""
        if isinstance(text, Arch):
            if text.space != self.name:
                raise self.error(f"architecture {text} belongs to space {text.space!r}")
            return text
        if not isinstance(text, str):
            return self.arch(text)  # a gene sequence; anything else is an error there
        if len(text) > MAX_ARCH_CHARS:
            raise self.error(f"architecture text of {len(text):,} characters ({V.shorten(text)}); at most "
                             f"{MAX_ARCH_CHARS} are read (nasbench_lab.spaces.base.MAX_ARCH_CHARS)")
        try:
            genes = self._parse_genes(text.strip())
        except ValueError as exc:
            if str(exc).startswith(f"{self.name}:"):
                raise
            raise self.error(f"cannot parse {V.shorten(text)} ({V.shorten(exc, 200, quote=False)})") from None
        return self.arch(genes)

    def default(self) -> Arch:
        """The reference architecture of the space (its ``example``)."""
        return self.parse(self.example)

    def canonical(self, arch: Arch) -> Arch:
        """Representative of the class of architectures that build the same network."""
        return arch

    # ----------------------------------------------------------------- size, enumeration, sampling
    def __len__(self) -> int:
        return self.size

    @cached_property
    def size(self) -> int:
        return self._count(())

    def _count(self, prefix: tuple[int, ...]) -> int:
        if len(prefix) == self.num_levels:
            return 1
        if self._is_product:
            return math.prod(len(self._product_options(i)) for i in range(len(prefix), self.num_levels))
        return sum(self._count(prefix + (g,)) for g in self.level_options(prefix))

    @cached_property
    def _is_product(self) -> bool:
        """True when every level's options ignore the prefix (then counting is a product)."""
        return bool(getattr(self, "product_space", False))

    def _product_options(self, level: int) -> Sequence[int]:
        # In a product space the prefix is ignored, so any placeholder prefix of the right length works.
        return self.level_options((0,) * level)

    @property
    def numerable(self) -> bool:
        return self.size <= self.max_enumerable

    def iter_genes(self) -> Iterator[tuple[int, ...]]:
        """Every valid gene tuple, in lexicographic tree order."""
        if self._is_product:
            yield from itertools.product(*(self._product_options(i) for i in range(self.num_levels)))
            return
        stack: list[tuple[int, ...]] = [()]
        while stack:
            prefix = stack.pop()
            if len(prefix) == self.num_levels:
                yield prefix
                continue
            for g in reversed(list(self.level_options(prefix))):
                stack.append(prefix + (g,))

    def enumerate(self) -> list[Arch]:
        """Every architecture (numerable spaces only), in a fixed order."""
        if not self.numerable:
            raise ValueError(
                f"{self.name}: the space has {self.size:.3g} architectures; enumerate() is for spaces of "
                f"at most {self.max_enumerable}. Use sample() instead."
            )
        return list(self._all)

    @cached_property
    def _all(self) -> tuple[Arch, ...]:
        return tuple(Arch(self.name, g, self.format(g)) for g in self.iter_genes())

    @cached_property
    def _index(self) -> dict[Arch, int]:
        return {a: i for i, a in enumerate(self._all)}

    def index(self, arch: Arch) -> int:
        """Position of an architecture in ``enumerate()``."""
        return self._index[self.parse(arch)]

    def sample(self, rng: np.random.Generator | int | None = None) -> Arch:
        """One architecture uniformly at random over the whole space."""
        rng = np.random.default_rng(rng)
        if self._is_product:
            genes = [rng.choice(np.asarray(self._product_options(i))) for i in range(self.num_levels)]
            return self.arch(genes)
        if self.numerable:
            return self._all[int(rng.integers(len(self._all)))]
        # Uniform over leaves: choose each branch in proportion to its number of leaves.
        prefix: tuple[int, ...] = ()
        while len(prefix) < self.num_levels:
            opts = list(self.level_options(prefix))
            weights = np.array([self._count(prefix + (g,)) for g in opts], dtype=float)
            prefix = prefix + (opts[int(rng.choice(len(opts), p=weights / weights.sum()))],)
        return self.arch(prefix)

    # ----------------------------------------------------------------- encodings and distances
    @cached_property
    def level_sizes(self) -> list[list[int]]:
        """All genes that can ever appear at each level (over every prefix)."""
        seen: list[set[int]] = [set() for _ in range(self.num_levels)]
        if self._is_product:
            return [list(self._product_options(i)) for i in range(self.num_levels)]
        for genes in self.iter_genes():
            for i, g in enumerate(genes):
                seen[i].add(g)
        return [sorted(s) for s in seen]

    @property
    def encoding_length(self) -> dict[str, int]:
        return {"categorical": self.num_levels, "onehot": sum(len(s) for s in self.level_sizes)}

    def encode(self, arch: Arch, kind: str = "onehot") -> np.ndarray:
        """``categorical``: one integer per level; ``onehot``: concatenated one-hot per level."""
        arch = self.parse(arch)
        if kind == "categorical":
            return np.asarray(arch.genes, dtype=np.int64)
        if kind == "onehot":
            out = []
            for level, g in enumerate(arch.genes):
                opts = self.level_sizes[level]
                v = np.zeros(len(opts), dtype=np.float32)
                v[opts.index(g)] = 1.0
                out.append(v)
            return np.concatenate(out)
        raise ValueError(f"encode: unknown kind {kind!r}; expected 'categorical' or 'onehot'")

    def distance(self, a: Arch, b: Arch) -> int:
        """Hamming distance between the categorical encodings."""
        a, b = self.parse(a), self.parse(b)
        return int(sum(x != y for x, y in zip(a.genes, b.genes)))

    def neighbours(self, arch: Arch) -> list[Arch]:
        """Valid architectures that differ from ``arch`` in exactly one decision."""
        arch = self.parse(arch)
        out = []
        for level, g in enumerate(arch.genes):
            for h in self.level_options(arch.genes[:level]):
                if h == g:
                    continue
                genes = arch.genes[:level] + (h,) + arch.genes[level + 1:]
                try:
                    out.append(self.arch(genes))
                except ValueError:
                    continue
        return out

    def mutate(self, arch: Arch, rng: np.random.Generator | int | None = None) -> Arch:
        """A uniformly chosen neighbour."""
        rng = np.random.default_rng(rng)
        nbrs = self.neighbours(arch)
        return nbrs[int(rng.integers(len(nbrs)))]

    # ----------------------------------------------------------------- networks
    @abstractmethod
    def graph(self, arch: Arch) -> nx.DiGraph:
        """A networkx DiGraph for the DAG view; nodes/edges carry an ``op`` attribute."""

    @abstractmethod
    def model(self, arch: Arch, num_classes: int = 10) -> nn.Module:
        """Standalone network of one architecture."""

    @abstractmethod
    def supernet(self, num_classes: int = 10) -> nn.Module:
        """Shared-weight single-path network: ``net(x, arch)``."""

    #: True where params and FLOPs are sums over levels by construction (every level's op sits at a
    #: fixed width and resolution, as NB-201 edges and NB-Macro layers): then both are read from one
    #: additive table (:func:`nasbench_lab.spaces.cost.cost_model`, probed once with built models)
    #: instead of building a model per call; :meth:`count_params` / :meth:`count_flops` stay the reference.
    additive_costs = False

    def params(self, arch: Arch, num_classes: int | None = None) -> int:
        """Exact parameter count of the standalone model (BN affine counted, running stats not)."""
        if self.additive_costs:
            return self._additive("params", arch, num_classes)
        return self.count_params(arch, num_classes)

    def flops(self, arch: Arch, num_classes: int | None = None) -> int:
        """Multiply-accumulates of conv and linear weights for one input of ``input_shape``."""
        if self.additive_costs:
            return self._additive("flops", arch, num_classes)
        return self.count_flops(arch, num_classes)

    def _additive(self, metric: str, arch: Arch, num_classes: int | None) -> int:
        from nasbench_lab.spaces.cost import cost_model

        genes = self.parse(arch).genes
        model = cost_model(self, metric, **({} if num_classes is None else {"num_classes": num_classes}))
        return int(round(model(genes)))  # integer counts: float sums of them are exact below 2**53

    def count_params(self, arch: Arch, num_classes: int | None = None) -> int:
        """:meth:`params` counted on a built standalone model (memoised)."""
        arch = self.parse(arch)
        key = ("params", arch.genes, num_classes)
        if key not in self._counts:
            model = self.model(arch) if num_classes is None else self.model(arch, num_classes)
            self._counts[key] = int(sum(p.numel() for p in model.parameters()))
        return self._counts[key]

    def count_flops(self, arch: Arch, num_classes: int | None = None) -> int:
        """:meth:`flops` counted by forward hooks on a built standalone model (memoised)."""
        from nasbench_lab.nn.flops import count_macs

        arch = self.parse(arch)
        key = ("flops", arch.genes, num_classes)
        if key not in self._counts:
            model = self.model(arch) if num_classes is None else self.model(arch, num_classes)
            self._counts[key] = count_macs(model, self.input_shape)
        return self._counts[key]

    @cached_property
    def _counts(self) -> dict[tuple, int]:
        # building a model to count is slow; views and tables ask for the same counts again
        return {}

    def info(self) -> dict[str, Any]:
        return {"name": self.name, "size": self.size, "levels": self.num_levels,
                "description": self.description, "example": self.example}

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}: {self.size} architectures>"
