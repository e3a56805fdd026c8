"""Writers of small files in the real formats of the file-based data sets (for tests)."""
