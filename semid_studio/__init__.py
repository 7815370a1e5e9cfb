"""SemID Studio: Semantic-ID generative retrieval, from catalogue to Semantic IDs to TIGER."""

__version__ = "0.1.0"
