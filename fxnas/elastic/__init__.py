"""Elastic (Once-for-All) search: coupled channel groups found from the graph, elastic width/kernel/depth."""

from __future__ import annotations

from . import mixed_rule as _mixed_rule  # noqa: F401  (registers the mixed-op rule)
from . import shape_rules as _shape_rules  # noqa: F401  (registers the reshape and reduction rules)
from . import torch_rules as _torch_rules  # noqa: F401  (registers the layer and combining rules)
from .base import ElasticModule
from .build import elasticize
from .channels import NodeContext, channel_groups
from .conv import ElasticConv, ElasticLinear
from .cost import cost
from .depth import ElasticResidual, residual_blocks, stages
from .groups import ChannelGroups, Group, Member
from .layout import Channels, Layout, Part, Seg
from .norms import ElasticBatchNorm, ElasticGroupNorm, ElasticLayerNorm
from .params import ElasticParam, elastic_params, largest, smallest
from .rules import CHANNEL_RULES, ChannelRuleError, RuleSet
from .split import ElasticSplit

__all__ = ["CHANNEL_RULES", "ChannelGroups", "ChannelRuleError", "Channels", "ElasticBatchNorm", "ElasticConv",
           "ElasticGroupNorm", "ElasticLayerNorm", "ElasticLinear", "ElasticModule", "ElasticParam",
           "ElasticResidual", "ElasticSplit", "Group", "Layout", "Member", "NodeContext", "Part", "RuleSet", "Seg",
           "channel_groups", "cost", "elastic_params", "elasticize", "largest", "residual_blocks", "smallest",
           "stages"]
