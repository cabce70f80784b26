"""Local HTTP servers that follow each platform's documented contract, for tests and benchmarks."""
