"""Renderers: each turns a finished Report into one output format and computes nothing."""
