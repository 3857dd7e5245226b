"""cml-action: continuous integration and delivery for machine learning."""

__version__ = "0.1.0"
