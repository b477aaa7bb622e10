"""xcausal: cross-modal causal discovery between images and structured variables."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("xcausal")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
