"""The torch-free half of the search engine: the protocol, the run store, the driver, the configs.

Nothing here imports torch (``tests/test_layout.py`` enforces it): strategies and the driver
run on plain data, and the torch half (``genomorph.search.runtime``) trains what they propose.
"""
