"""A hyperparameter search space, read from YAML and checked against the run config before any trial runs.

Each key is a dotted run-config key, each value one distribution::

    finetune.lr: {loguniform: [1.0e-4, 3.0e-3]}
    finetune.optimizer: {choice: [adamw, sgd]}
    finetune.epochs: {int: [2, 6]}
    train.head_dropout: {uniform: [0.1, 0.5]}

Every bound and every choice is validated as a config value of its key, so a typo or an impossible value
fails when the file is read, naming the key, not in the middle of trial 7.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from kagglekit.core.config import RunConfig, from_dict, merge, read_yaml
from kagglekit.core.errors import ConfigError

#: distribution name -> (what its value is, is the range on a log scale, are the draws whole numbers)
DISTRIBUTIONS = {"uniform": ("range", False, False), "loguniform": ("range", True, False),
                 "int": ("range", False, True), "logint": ("range", True, True), "choice": ("values", False, False)}


@dataclass(frozen=True)
class Dimension:
    key: str
    kind: str
    values: tuple

    def ray_domain(self):
        """This dimension as a Ray Tune domain (which OptunaSearch turns into an Optuna distribution)."""
        from ray import tune

        low, high = self.values[:2] if self.kind != "choice" else (None, None)
        return {"uniform": lambda: tune.uniform(low, high), "loguniform": lambda: tune.loguniform(low, high),
                "int": lambda: tune.randint(low, high + 1), "logint": lambda: tune.lograndint(low, high + 1),
                "choice": lambda: tune.choice(list(self.values))}[self.kind]()

    def cast(self, value):
        """A drawn value as the config wants it (numpy scalars are not ints or floats to a strict config)."""
        if self.kind == "choice":
            return value
        return int(value) if DISTRIBUTIONS[self.kind][2] else float(value)


@dataclass(frozen=True)
class SearchSpace:
    dimensions: tuple[Dimension, ...]

    def ray_space(self) -> dict:
        return {d.key: d.ray_domain() for d in self.dimensions}

    def overrides(self, params: dict) -> dict:
        """The nested config mapping that sets each searched key to its drawn value."""
        out: dict = {}
        for d in self.dimensions:
            out = merge(out, nest(d.key, d.cast(params[d.key])))
        return out

    def to_dict(self) -> dict:
        return {d.key: {d.kind: list(d.values)} for d in self.dimensions}


def nest(key: str, value) -> dict:
    """``nest("a.b", 1) == {"a": {"b": 1}}``."""
    for part in reversed(key.split(".")):
        value = {part: value}
    return value


def read_space(path: Path, base: dict) -> SearchSpace:
    """The space in ``path``, every value checked as a config value on top of the resolved config ``base``."""
    raw = read_yaml(Path(path), "search space")
    if not isinstance(raw, dict) or not raw:
        raise ConfigError(f"search space {path}: expected a mapping of config keys to distributions, "
                          "e.g. finetune.lr: {loguniform: [1.0e-4, 3.0e-3]}")
    return SearchSpace(tuple(_dimension(path, str(key), spec, base) for key, spec in raw.items()))


def _dimension(path: Path, key: str, spec, base: dict) -> Dimension:
    where = f"search space {path}, key {key}"
    if not isinstance(spec, dict) or len(spec) != 1 or next(iter(spec)) not in DISTRIBUTIONS:
        raise ConfigError(f"{where}: expected one of {', '.join(f'{{{d}: ...}}' for d in DISTRIBUTIONS)}, got {spec!r}")
    (kind, values), = spec.items()
    shape, log, whole = DISTRIBUTIONS[kind]
    if not isinstance(values, list) or not values:
        raise ConfigError(f"{where}: {kind} takes a list, got {values!r}")
    if shape == "range":
        numbers = (int,) if whole else (int, float)
        if len(values) != 2 or not all(isinstance(v, numbers) and not isinstance(v, bool) for v in values) \
                or not values[0] < values[1] or (log and values[0] <= 0):
            raise ConfigError(f"{where}: {kind} takes [low, high] with low < high"
                              + (" and low > 0" if log else "") + (", whole numbers" if whole else "")
                              + f", got {values!r}")
        values = [int(v) if whole else float(v) for v in values]
    for value in values:  # each bound or choice must be a valid value of the key
        from_dict(RunConfig, merge(base, nest(key, value)), where=where)
    return Dimension(key, kind, tuple(values))
