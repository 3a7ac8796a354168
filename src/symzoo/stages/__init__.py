"""Pipeline stages: one module per rule. Each reads its inputs, calls the library, writes its outputs atomically.

The library layers below take tensors, frames and typed settings; only the stages touch files.
"""
