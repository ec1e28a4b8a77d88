#!/usr/bin/env python3
"""Writes Tests/KondateModelTests/Fixtures/reference.safetensors with the `safetensors` package
(pip install safetensors numpy), so the Swift tests read a file made by the reference writer:
F32 'w' = arange(6).reshape(2, 3), F32 'b' = [1.5], F16 'h' = [0.5, -2], metadata format=pt."""
import os
import numpy as np
from safetensors.numpy import save_file

out = os.path.join(os.path.dirname(__file__), "..", "Tests", "KondateModelTests", "Fixtures", "reference.safetensors")
save_file({"w": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.array([1.5], dtype=np.float32),
           "h": np.array([0.5, -2], dtype=np.float16)}, out, metadata={"format": "pt"})
print(out, os.path.getsize(out), "bytes")
