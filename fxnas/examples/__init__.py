"""User-style model files shipped with fxnas (load them with ``fxnas.modelfile.load_model``)."""
