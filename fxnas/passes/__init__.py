"""Graph passes: patterns (rewrite targets), rewrite (matches -> Slots), construct (Slots -> mixed ops),
inline, materialize (supernet -> standalone subnet)."""

from . import patterns  # noqa: F401  (registers the patterns)
