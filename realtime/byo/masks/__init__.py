"""Users' mask models (shared/BYO-MODELS-2.md §2): occluders (XSeg, VisoMaster's occluder) and face
parsers (BiSeNet), run through our ONNX converter beside the generator.

``profiles`` (each family's interface, detection by sha256 then signature, BiSeNet's classes and
the region names), ``modules`` (a file behind one crop → mask contract), ``refine`` (FaceFusion's
blur and remap), ``masker`` (the swap stage's ``FaceMasker`` from ``--occluder``/``--parser``).
Stand-ins with each family's exact signature, for tests and benchmarks, are ``realtime.testing_masks``
(above both this package and ``testing_onnx``, whose graph builder they use).
"""
