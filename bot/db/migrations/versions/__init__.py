"""Revisions, oldest first: ``NNNN_slug.py``; each is checked by hand after autogenerate."""
