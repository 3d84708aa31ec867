"""Importers of preference data: one module per input format, a streaming reader, and the
detection that picks the format from a file's first row."""
