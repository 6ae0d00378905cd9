"""Raw video input: decoding (PyAV), snippet sampling and cropping, 3D-CNN backbones, and the Ray Data
feature extractor that writes the corpus format (``jobs/extract.py``)."""
