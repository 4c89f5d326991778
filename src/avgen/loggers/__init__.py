"""Loggers: Lightning's, with what avgen needs on top."""
