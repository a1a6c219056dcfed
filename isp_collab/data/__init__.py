"""Training data: image sources (folders of photos, dead leaves) and stack samplers.

A sample is a stack of N patches plus targets (:class:`~isp_collab.data.batch.StackBatch`).
Modules: ``sources`` (images), ``batch`` (the batch record), ``sharpen`` (Gaussian-blur stacks),
``lens`` (lens-aberration stacks).
"""
