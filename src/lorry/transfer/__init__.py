"""The transfer layer: shared, deduplicated, limited, retried and cancellable transfers.

It knows nothing about registries (DESIGN.md §2, layer 5): pull, push and copy hand it keys,
descriptors and a layer store, and it schedules the work.
"""
