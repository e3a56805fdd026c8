"""``TileGrid``: how an (out, in) weight matrix is cut into crossbars, and its layouts.

A matrix is split into C×R crossbars of at most ``tile_cols`` inputs × ``tile_rows`` outputs
(balanced chunks, minimal zero padding). The forward layout is (C, ci, R·ro): input chunk c,
its ci inputs, all padded outputs, so one ``bmm`` runs every crossbar of a forward read. The
transposed layout (C·R, ro, ci) holds one block per crossbar for reads from the output side.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class TileGrid:
    """Shape bookkeeping of a tiled (out, in) matrix."""

    out_features: int
    in_features: int
    n_col: int  # C: input chunks
    n_row: int  # R: output chunks
    ci: int  # inputs per crossbar (padded)
    ro: int  # outputs per crossbar (padded)

    @classmethod
    def for_matrix(cls, out_f: int, in_f: int, tile_rows: int, tile_cols: int) -> TileGrid:
        n_col, n_row = math.ceil(in_f / tile_cols), math.ceil(out_f / tile_rows)
        return cls(out_f, in_f, n_col, n_row, math.ceil(in_f / n_col), math.ceil(out_f / n_row))

    @property
    def in_padded(self) -> int:
        return self.n_col * self.ci

    @property
    def out_padded(self) -> int:
        return self.n_row * self.ro

    @property
    def shape(self) -> torch.Size:
        """The forward layout (C, ci, out_p)."""
        return torch.Size((self.n_col, self.ci, self.out_padded))

    def to_grid(self, w: Tensor) -> Tensor:
        """(out, in) → (C, ci, out_p), zero padded; a view of ``w`` when no padding is needed
        (read it, do not write into it)."""
        pad = (0, self.in_padded - self.in_features, 0, self.out_padded - self.out_features)
        wp = torch.nn.functional.pad(w, pad) if any(pad) else w
        return wp.t().reshape(self.n_col, self.ci, self.out_padded)

    def from_grid(self, g: Tensor) -> Tensor:
        """(C, ci, out_p) → (out, in)."""
        return g.reshape(self.in_padded, self.out_padded).t()[: self.out_features,
                                                              : self.in_features]

    def transposed(self, a: Tensor) -> Tensor:
        """(C, ci, out_p) → (C·R, ro, ci): one block per crossbar, rows = its outputs."""
        return (a.reshape(self.n_col, self.ci, self.n_row, self.ro).permute(0, 2, 3, 1)
                .reshape(self.n_col * self.n_row, self.ro, self.ci))

    def tile_absmax(self, a: Tensor) -> Tensor:
        """Max |a| over each crossbar of a (C, ci, out_p) tensor, broadcast to (C, 1, out_p)."""
        t = a.reshape(self.n_col, self.ci, self.n_row, self.ro)
        return self.expand(absmax(t, (1, 3)))  # (C, R)

    @staticmethod
    def column_absmax(a: Tensor) -> Tensor:
        """Max |a| over each crossbar column of a (C, ci, out_p) tensor, (C, 1, out_p)."""
        return absmax(a, (1,), keepdim=True)

    def expand(self, m: Tensor) -> Tensor:
        """A value per crossbar (C, R) broadcast to its outputs, (C, 1, out_p)."""
        return m.repeat_interleave(self.ro, dim=1).unsqueeze(1)


def absmax(a: Tensor, dim: tuple[int, ...], keepdim: bool = False) -> Tensor:
    """Max |a| over ``dim`` as max(max a, −min a): two reductions, no |a| array."""
    return torch.maximum(a.amax(dim=dim, keepdim=keepdim), -a.amin(dim=dim, keepdim=keepdim))
