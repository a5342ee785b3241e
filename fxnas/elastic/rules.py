"""The registry of channel rules: how each op kind moves, joins, slices or starts channel groups.

A rule is a function ``rule(ctx) -> value`` registered under the op's name: a module class name
(``"Conv2d"``; looked up along the class's MRO, so ``"_BatchNorm"`` covers every BatchNorm), or a function
or method name (``"add"`` covers ``operator.add``, ``torch.add`` and ``Tensor.add``). ``ctx`` is a
:class:`fxnas.elastic.channels.NodeContext`; the value is the output's :class:`Layout`, ``None`` for
outputs without channels, or a tuple of those.

Extend the default rules for your own ops, either for every analysis::

    @CHANNEL_RULES.register("MyNorm")
    def my_norm(ctx):
        return ctx.through(ctx.channels(0, dim=1))

or only for one call, with a child set: ``rules = CHANNEL_RULES.child(); rules.register("MyNorm", obj=fn)``
then ``fxnas.channel_groups(model, x, rules=rules)``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import torch.fx as fx

from ..errors import FxnasError, RegistryError
from ..registry import Registry


class ChannelRuleError(FxnasError):
    """An op has no channel rule, or its rule cannot place its channels."""


class RuleSet(Registry):
    """A Registry of channel rules that falls back to a parent set (scoped extensions leave it untouched)."""

    def __init__(self, kind: str = "channel rule", parent: RuleSet | None = None) -> None:
        super().__init__(kind)
        self.parent = parent

    def get(self, name: str) -> Any:
        """The rule registered as ``name`` here or in a parent set."""
        if self.parent is not None and name not in self._items and name in self.parent:
            return self.parent.get(name)
        return super().get(name)

    def __contains__(self, name: object) -> bool:
        return (isinstance(name, str) and name in self._items) or (self.parent is not None and name in self.parent)

    def names(self) -> list[str]:
        """Every rule name visible from this set."""
        own = super().names()
        return sorted(set(own) | set(self.parent.names())) if self.parent is not None else own

    def child(self) -> RuleSet:
        """A child set: rules registered on it apply only where it is passed (``rules=``); this set is untouched.

        (``Registry.scoped()`` instead undoes registrations on this set when its block ends.)
        """
        return RuleSet(self.kind, parent=self)


CHANNEL_RULES = RuleSet()

Rule = Callable[[Any], Any]


def op_names(gm: fx.GraphModule, node: fx.Node) -> list[str]:
    """The names a node's rule may be registered under, most specific first."""
    if node.op == "call_module":
        return [c.__name__ for c in type(gm.get_submodule(node.target)).__mro__]
    if node.op == "call_function":
        return [getattr(node.target, "__name__", str(node.target))]
    if node.op == "call_method":
        return [str(node.target)]
    return [node.op]


def op_label(gm: fx.GraphModule, node: fx.Node) -> str:
    """A readable name of the op a node runs, for errors."""
    if node.op == "call_module":
        return f"module {node.target!r} ({type(gm.get_submodule(node.target)).__name__})"
    if node.op == "call_function":
        mod = getattr(node.target, "__module__", None) or ""
        return f"function {mod + '.' if mod else ''}{getattr(node.target, '__name__', node.target)}"
    return f"method Tensor.{node.target}"


def find_rule(rules: RuleSet, gm: fx.GraphModule, node: fx.Node) -> Rule | None:
    """The rule for ``node``, or None when no name of it is registered."""
    for name in op_names(gm, node):
        if name in rules:
            return rules.get(name)
    return None


_FRAME = re.compile(r'File "(?P<file>[^"]+)", line (?P<line>\d+), in [^\n]*\n\s*(?P<code>[^\n]*)')


def _library_frame(path: str) -> bool:
    p = path.replace("\\", "/")
    return "/torch/" in p or ("/fxnas/" in p and "/fxnas/examples/" not in p)


def where(node: fx.Node) -> str:
    """The source line that created ``node`` (``file:line: code``), or its graph name when unknown."""
    trace = node.stack_trace or ""
    frames = [m for m in _FRAME.finditer(trace) if not _library_frame(m["file"])]
    if frames:
        f = frames[-1]
        return f"{f['file']}:{f['line']}: {f['code'].strip()}"
    return f"graph node {node.name!r}"


def missing_rule_error(gm: fx.GraphModule, node: fx.Node, names: list[str]) -> ChannelRuleError:
    """The error for an op that carries channels but has no rule: the op, its line and how to add one."""
    return ChannelRuleError(
        f"no channel rule for {op_label(gm, node)} at {where(node)}; register one with "
        f"@fxnas.elastic.CHANNEL_RULES.register({names[0]!r}) (or pass rules=CHANNEL_RULES.child() with it), "
        f"or trace that code as a leaf module that has a rule")


__all__ = ["CHANNEL_RULES", "ChannelRuleError", "RegistryError", "RuleSet", "find_rule", "op_label", "op_names",
           "where"]
