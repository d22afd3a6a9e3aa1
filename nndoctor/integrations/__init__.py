"""Callbacks that run nndoctor's watcher inside other trainers. Each module imports its library
only when imported itself, so nndoctor works without Lightning or transformers installed."""
