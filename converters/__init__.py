"""Importers, one module per source format, installed as edgecnn.converters."""
