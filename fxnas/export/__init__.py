"""Exporting a searched subnet as a standalone model file (torch.export, TorchScript, state dict + source, ONNX)."""

from .formats import EXPORT_FORMATS, ExportFormat
from .run import RunSubnet, subnet_from_run

__all__ = ["EXPORT_FORMATS", "ExportFormat", "RunSubnet", "subnet_from_run"]
