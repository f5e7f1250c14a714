"""Assets: download, import, verify and cache what the engine needs."""
