"""layerpack: turn a program in any language into an AWS Lambda layer that fits and runs."""

__version__ = "0.2.0"
