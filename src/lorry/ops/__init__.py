"""Operations: pull, push and copy, the only place that combines the registry, the store and the
transfer layer (DESIGN.md §2, layer 6). Each operation has an async API and a synchronous facade.
"""
