"""Data: label files, features cache, the embedded synthetic set and the shared data module."""
