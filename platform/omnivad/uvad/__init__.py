"""Unsupervised VAD by interleaving a weighted one-class model and a weakly-supervised model
(Nie et al. ECCV'24; spec ../shared/specs/wocc_ws.md). Entry point: :func:`omnivad.uvad.runner.run_uvad`."""
