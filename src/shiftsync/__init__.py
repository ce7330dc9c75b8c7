"""shiftsync: copy tables out of Amazon Redshift Serverless, securely and exactly."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
