"""Adapters: the only modules that talk to outside systems (Docker, git, AWS, HTTP)."""
