"""Tar archives: a fast pax writer for the files source, safe streaming extraction, and the file index."""
