"""Benchmarks of the project (``isp-collab bench``), writing ``benchmarks/RESULTS.md`` and plots.

Modules (numpy images are ``H x W x 3`` float32, linear RGB in [0, 1], unless stated):

* :mod:`.metrics` — PSNR and SSIM (scikit-image) over the image minus a border;
* :mod:`.data` — the committed benchmark set (Set14 colour + Set5) and Levin et al.'s kernels;
* :mod:`.protocol` — the degradations of the paper's §5.2 (unprocessing, Gaussian blur, noise);
* :mod:`.classical` — unsharp mask (OpenCV) and Polyblur (the ``polyblur`` package);
* :mod:`.tune` — grid / coordinate-descent search of the classical parameters;
* :mod:`.kernel_estimation` — the paper's §3 least-squares kernel estimate and KSIM;
* :mod:`.quality` — the sharpening table;
* :mod:`.lens` — the lens-region table, each lens model on its own lens;
* :mod:`.collab_gain` — validation PSNR vs tile and stack size (``bench training``);
* :mod:`.speed` — parameters, FLOPs, latency per runtime, memory, ``torch.mm`` reference throughput;
* :mod:`.report` — RESULTS.md sections (merged by markers) and matplotlib plots;
* :mod:`.inputs` — the up-front checks of the CLI (flags per action, minimum image sizes);
* :mod:`.run` — the drivers behind the CLI.
"""
