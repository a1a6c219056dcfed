"""Physics of the degradations: blur kernels, PSF fields, unprocessing to linear RGB, sensor noise.

Pure functions on tensors. Parameters are sampled apart from being applied (``sample_*`` vs
``blur_*`` / ``unprocess``), so one draw can be applied to a whole stack. Modules:
``kernels`` (Gaussian blur), ``unprocess`` (Brooks et al. 2019 sRGB <-> camera RGB),
``noise`` (Gaussian and demosaicking residual noise), ``psf_field`` (lens PSF fields: data,
interpolation, spatially varying blur, calibration files), ``optics`` (the pupil-function PSFs of
the bundled lenses).
"""
