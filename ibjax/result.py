"""``InfoPlane``: the one result object of an evaluation, with one npz schema for CLI and experiments.

Arrays are ``G x S x E x L``: estimator-settings grid (G = 1 without a sweep), runs/seeds, epochs,
T's of the view (layers, filters, ...). ``values`` holds every output of the estimator (``i_xt``,
``i_ty`` and, where the estimator has them, ``*_se`` standard errors or ``*_lower`` bounds).

    plane = InfoPlane.load("results/tishby/infoplane_binning.npz")
    plane.i_xt                     # S x E x L (only when G == 1; else plane.setting(g).i_xt)
    plane.mean("i_xt"), plane.spread("i_xt")   # over seeds: E x L
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ibjax import io
from ibjax.timing import phased

SCHEMA = "ibjax.infoplane/2"


def _optional(name: str):
    try:
        return __import__(name)
    except ImportError:
        raise ImportError(f"this needs {name}: pip install 'ibjax[io]'") from None


def concat_epochs(planes: list, key: str = "") -> InfoPlane:
    """Planes of the same runs and settings over consecutive epoch chunks, as one plane."""
    first = planes[0]
    warn: dict = {}
    for p in planes:
        for msg, where in p.warnings.items():
            warn.setdefault(msg, []).extend(where)
    return replace(
        first,
        epochs=np.concatenate([p.epochs for p in planes]),
        warnings=warn,
        key=key or first.key,
        values={k: np.concatenate([p.values[k] for p in planes], axis=2) for k in first.values},
    )


def _plain(o):
    return o.tolist() if hasattr(o, "tolist") else str(o)


class DamagedFile(ValueError):
    """A saved file that cannot be read (truncated, not an npz, fields missing)."""


@dataclass(frozen=True)
class InfoPlane:
    epochs: np.ndarray  # E (for window views: the first epoch of each window)
    values: dict  # output name -> G x S x E x L
    estimator: str
    settings: dict  # resolved estimator settings (a swept option holds the first value)
    sweep: dict = field(default_factory=dict)  # option -> G values, row-major grid
    run_ids: tuple = ()
    run_dirs: tuple = ()
    layer_names: tuple = ()
    measured: dict = field(default_factory=dict)  # network, data, samples, view, units
    warnings: dict = field(default_factory=dict)  # message -> list of [g, s, epoch, layer]
    key: str = ""  # hash of what produced the numbers (see ibjax.pipeline.result_key)
    versions: dict = field(default_factory=dict)

    def __post_init__(self):
        shapes = {k: np.shape(v) for k, v in self.values.items()}
        if not {"i_xt", "i_ty"} <= set(shapes) or len(set(shapes.values())) != 1:
            raise ValueError(f"values must hold i_xt and i_ty of one G x S x E x L shape, got {shapes}")
        g, s, e, l = shapes["i_xt"]
        if e != len(self.epochs):
            raise ValueError(f"values have {e} epochs but epochs has {len(self.epochs)}")

    @property
    def shape(self) -> tuple:
        return np.shape(self.values["i_xt"])

    def setting(self, g: int) -> InfoPlane:
        """The plane of the g-th settings-grid point (G = 1)."""
        sw = {k: [v[g]] for k, v in self.sweep.items()}
        return replace(
            self,
            values={k: v[g : g + 1] for k, v in self.values.items()},
            sweep=sw,
            settings={**self.settings, **{k: v[0] for k, v in sw.items()}},
        )

    def runs(self, idx) -> InfoPlane:
        """The plane of its runs ``idx`` only (positions on the runs axis): values, run ids and dirs."""
        idx = [int(i) for i in idx]
        if any(not 0 <= i < self.shape[1] for i in idx):
            raise ValueError(f"runs: positions {idx} outside the plane's {self.shape[1]} runs")
        return replace(
            self,
            values={k: v[:, idx] for k, v in self.values.items()},
            run_ids=tuple(self.run_ids[i] for i in idx) if self.run_ids else (),
            run_dirs=tuple(self.run_dirs[i] for i in idx) if self.run_dirs else (),
        )

    def hidden(self) -> InfoPlane:
        """The plane without its last T, the network's (softmax) output: the hidden layers only. Only for
        per-layer views ("layers", "window:W"), where the output is the last T."""
        view = self.measured.get("view", "layers")
        if not (view == "layers" or str(view).startswith("window")):
            raise ValueError(f"hidden() drops the output layer of a per-layer plane; this plane's view is {view!r}")
        if self.shape[-1] < 2:
            raise ValueError(
                f"hidden() needs a plane with the output and at least one hidden layer, got {self.shape[-1]} T"
            )
        measured = dict(self.measured)
        if measured.get("t_coords"):
            measured["t_coords"] = list(measured["t_coords"])[:-1]
        return replace(
            self,
            values={k: v[..., :-1] for k, v in self.values.items()},
            layer_names=tuple(self.layer_names[:-1]),
            measured=measured,
        )

    def __getattr__(self, name):
        values = self.__dict__.get("values", {})
        if name in values:
            v = values[name]
            if v.shape[0] != 1:
                raise ValueError(
                    f"this plane has a settings axis of {v.shape[0]}: use plane.setting(g).{name} "
                    f"or plane.values[{name!r}] (G x S x E x L)"
                )
            return v[0]
        raise AttributeError(name)

    def mean(self, name: str = "i_xt") -> np.ndarray:
        """Mean over runs (seeds): E x L (G x E x L with a sweep)."""
        v = self.values[name].mean(axis=1)
        return v[0] if v.shape[0] == 1 else v

    def spread(self, name: str = "i_xt") -> np.ndarray:
        """Standard deviation over runs (0 for a single run): E x L (G x E x L with a sweep)."""
        v = self.values[name].std(axis=1, ddof=1) if self.shape[1] > 1 else np.zeros(self.values[name].shape)[:, 0]
        return v[0] if v.shape[0] == 1 else v

    def _coords(self) -> dict:
        g, s, _, n_t = self.shape
        names = list(self.layer_names) or [f"T {i + 1}" for i in range(n_t)]
        return {
            "setting": np.arange(g),
            "seed": np.arange(s),
            "epoch": np.asarray(self.epochs),
            "layer": names,
            "run_id": list(self.run_ids) or [f"run{i}" for i in range(s)],
        }

    def to_dataframe(self):
        """Long format (pandas): one row per (setting, seed, epoch, layer) in G x S x E x L order, the
        swept option values and run id beside them, one column per output (i_xt, i_ty, ...)."""
        pd = _optional("pandas")
        c = self._coords()
        gi, si, ei, li = (a.ravel() for a in np.indices(self.shape))
        cols = {
            "setting": gi,
            **{k: np.asarray(v, dtype=object)[gi] for k, v in self.sweep.items()},
            "seed": si,
            "run_id": np.asarray(c["run_id"], dtype=object)[si],
            "epoch": c["epoch"][ei],
            "layer": np.asarray(c["layer"], dtype=object)[li],
        }
        return pd.DataFrame({**cols, **{k: np.asarray(v).ravel() for k, v in self.values.items()}})

    def to_xarray(self):
        """An ``xarray.Dataset``: one variable per output on dims (setting, seed, epoch, layer), run ids
        and swept values as coordinates, estimator, settings and units as attributes."""
        xr = _optional("xarray")
        c = self._coords()
        coords = {k: c[k] for k in ("setting", "seed", "epoch", "layer")}
        coords["run_id"] = ("seed", c["run_id"])
        coords.update({k: ("setting", list(v)) for k, v in self.sweep.items()})
        attrs = {
            "estimator": self.estimator,
            "units": self.units,
            "key": self.key,
            "settings": json.dumps(self.settings, default=_plain),
            "measured": json.dumps(self.measured, default=_plain),
        }
        dims = ("setting", "seed", "epoch", "layer")
        return xr.Dataset({k: (dims, np.asarray(v)) for k, v in self.values.items()}, coords=coords, attrs=attrs)

    @property
    def units(self) -> str:
        return self.measured.get("units", "bits")

    @property
    def t_coords(self) -> tuple:
        """Each T's coordinates, parallel to ``layer_names``: ``{"layer": l}`` (1-based), plus
        ``"filter": c`` for per-filter views or ``"pool": "before" | "after"`` for the pooled view
        (recorded by the engine; a plane built by hand without them gets ``{"layer": l}`` per T, and
        an older file's are read back from its names on load)."""
        got = self.measured.get("t_coords")
        if got:
            return tuple(dict(c) for c in got)
        return tuple({"layer": l + 1} for l in range(self.shape[-1]))

    def select(self, **coords) -> tuple[np.ndarray, list[int]]:
        """(positions of the T's whose coordinates match every given one, e.g. ``layer=2``,
        ``filter=3``, ``pool="after"``; the matching coordinate dicts)."""
        hits = [(i, c) for i, c in enumerate(self.t_coords) if all(c.get(k) == v for k, v in coords.items())]
        return np.array([i for i, _ in hits], int), [c for _, c in hits]

    def per_filter(self, name: str = "i_xt", g: int = 0) -> tuple[np.ndarray, list[int]]:
        """A per-filter plane's ``name`` as S x E x L x F_max (the T's coordinates: layer, filter; NaN where a
        layer has fewer filters) and the L layers (1-based), for setting ``g``."""
        ids = [(c["layer"], c["filter"]) for c in self.t_coords]
        layers = sorted({l for l, _ in ids})
        v = self.values[name][g]
        out = np.full(v.shape[:2] + (len(layers), max(c for _, c in ids)), np.nan, np.float32)
        out[:, :, np.array([layers.index(l) for l, _ in ids]), np.array([c - 1 for _, c in ids])] = v
        return out, layers

    def save(self, path: str | Path) -> Path:
        meta = dict(
            schema=SCHEMA,
            estimator=self.estimator,
            settings=self.settings,
            sweep=self.sweep,
            run_ids=list(self.run_ids),
            run_dirs=[str(d) for d in self.run_dirs],
            layer_names=list(self.layer_names),
            measured=self.measured,
            warnings=self.warnings,
            key=self.key,
            versions=self.versions,
        )
        arrays = {f"{k}_GxSxExL": np.asarray(v) for k, v in self.values.items()}
        io.atomic_save_npz(
            path, dict(epochs_E=np.asarray(self.epochs), meta=np.array(json.dumps(meta, default=_plain)), **arrays)
        )
        return Path(path)

    @classmethod
    @phased("load")
    def load(cls, path: str | Path) -> InfoPlane:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such result file")
        try:
            with np.load(path, allow_pickle=False) as z:
                meta = json.loads(str(z["meta"]))
                values = {k[: -len("_GxSxExL")]: z[k] for k in z.files if k.endswith("_GxSxExL")}
                epochs = z["epochs_E"]
        except (KeyError, ValueError, OSError, EOFError, json.JSONDecodeError, zipfile.BadZipFile) as e:
            raise DamagedFile(f"{path}: not an ibjax information-plane file or corrupt ({e})") from e
        if meta.get("schema") != SCHEMA:
            raise ValueError(f"{path}: schema {meta.get('schema')!r}, expected {SCHEMA!r}; re-run the evaluation")
        settings = {k: tuple(v) if isinstance(v, list) else v for k, v in meta["settings"].items()}
        if "t_coords" not in meta["measured"] and meta["measured"].get("view") in ("filters", "pooled"):
            meta["measured"]["t_coords"] = [_legacy_coords(n) for n in meta["layer_names"]]
        return cls(
            epochs,
            values,
            meta["estimator"],
            settings,
            meta["sweep"],
            tuple(meta["run_ids"]),
            tuple(meta["run_dirs"]),
            tuple(meta["layer_names"]),
            meta["measured"],
            meta["warnings"],
            meta["key"],
            meta.get("versions", {}),
        )


def _legacy_coords(name: str) -> dict:
    """Coordinates of a T name the engine wrote before it recorded them ("layer 2 filter 5",
    "layer 1 after pool"): the inverse of ``views.name_of``."""
    words = name.split()
    coord = {"layer": int(words[1])}
    if len(words) == 4 and words[2] == "filter":
        coord["filter"] = int(words[3])
    elif len(words) == 4 and words[3] == "pool":
        coord["pool"] = words[2]
    return coord
